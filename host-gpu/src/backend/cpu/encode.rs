//! Decoding little-endian input bytes into tensor elements.

use crate::backend::cpu::alloc::alloc;
use crate::backend::cpu::buffer::Values;
use crate::backend::cpu::scalar::canon;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::SourceEncoding;

/// IEEE binary16 → binary32, exact (subnormals become normal f32s; NaN becomes canonical).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man · 2^-24, exactly representable in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => return f32::NAN,
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// One GGML block of 32 values (SEMANTICS.md, "Input decoding"): `d·(q − 8)`
/// (Q4_0), `d·q + m` (Q4_1), `d·q` (Q8_0); `d` and `m` are the block's f16s,
/// exact in f32, so every product is exact and only Q4_1's sum rounds. Byte `j` of a
/// 4-bit block holds value `j` in its low nibble and `j + 16` in its high one.
fn dequantize_block(block: &[u8], encoding: SourceEncoding, out: &mut [f32]) {
    let half = |at: usize| f16_to_f32(u16::from_le_bytes([block[at], block[at + 1]]));
    let d = half(0);
    match encoding {
        SourceEncoding::Q4_0 => {
            for (j, &b) in block[2..18].iter().enumerate() {
                out[j] = canon(d * (i32::from(b & 0x0f) - 8) as f32);
                out[j + 16] = canon(d * (i32::from(b >> 4) - 8) as f32);
            }
        }
        SourceEncoding::Q4_1 => {
            let m = half(2);
            for (j, &b) in block[4..20].iter().enumerate() {
                out[j] = canon(d * f32::from(b & 0x0f) + m);
                out[j + 16] = canon(d * f32::from(b >> 4) + m);
            }
        }
        _ => {
            for (o, &q) in out.iter_mut().zip(&block[2..34]) {
                *o = canon(d * f32::from(q as i8));
            }
        }
    }
}

/// Decodes `bytes` (a whole number of the encoding's blocks) to `dtype`.
pub(super) fn decode(
    bytes: &[u8],
    encoding: SourceEncoding,
    dtype: DType,
) -> Result<Values, Error> {
    let (values, size) = encoding.block();
    let Some(n) = encoding.elements_in(bytes.len()) else {
        return Err(Error::Device(format!(
            "cpu: {} bytes is not a whole number of {size}-byte {encoding:?} blocks",
            bytes.len()
        )));
    };
    let chunks = bytes.chunks_exact(size);
    if encoding.is_blocked() && dtype == DType::F32 {
        let mut out = alloc::<f32>(n)?;
        for (o, block) in out.chunks_exact_mut(values).zip(chunks) {
            dequantize_block(block, encoding, o);
        }
        return Ok(Values::F32(out));
    }
    match (encoding, dtype) {
        (SourceEncoding::F32 | SourceEncoding::F16 | SourceEncoding::Bf16, DType::F32) => {
            let mut out = alloc::<f32>(n)?;
            for (o, c) in out.iter_mut().zip(chunks) {
                *o = canon(match *c {
                    [a, b, c, d] => f32::from_le_bytes([a, b, c, d]),
                    [a, b] if encoding == SourceEncoding::F16 => {
                        f16_to_f32(u16::from_le_bytes([a, b]))
                    }
                    [a, b] => f32::from_bits(u32::from(u16::from_le_bytes([a, b])) << 16),
                    _ => 0.0,
                });
            }
            Ok(Values::F32(out))
        }
        (SourceEncoding::I32, DType::I32) => {
            let mut out = alloc::<i32>(n)?;
            for (o, c) in out.iter_mut().zip(chunks) {
                if let [a, b, c, d] = *c {
                    *o = i32::from_le_bytes([a, b, c, d]);
                }
            }
            Ok(Values::I32(out))
        }
        (SourceEncoding::I64, DType::I32) => {
            let mut out = alloc::<i32>(n)?;
            for (at, (o, c)) in out.iter_mut().zip(chunks).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                let v = i64::from_le_bytes(b);
                *o = i32::try_from(v).map_err(|_| i64_out_of_range(at, v))?;
            }
            Ok(Values::I32(out))
        }
        _ => Err(Error::Unsupported(format!(
            "cpu: cannot decode {encoding:?} to {}",
            dtype.name()
        ))),
    }
}

/// The error for an i64 element that does not fit in i32.
fn i64_out_of_range(at: usize, v: i64) -> Error {
    Error::InvalidArgument(format!(
        "i64 element {at} is {v}, outside the i32 range; only values that fit in i32 can be narrowed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(bytes: &[u8], encoding: SourceEncoding) -> Vec<f32> {
        match decode(bytes, encoding, DType::F32) {
            Ok(Values::F32(v)) => v.to_vec(),
            other => panic!("{encoding:?}: {other:?}"),
        }
    }

    #[test]
    fn ggml_blocks_decode_to_their_defined_values() {
        // Q4_1: d = 0.5, m = -1; byte j holds j (low) and 15 - j (high).
        let mut q41 = vec![0x00, 0x38, 0x00, 0xbc];
        q41.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = f32s(&q41, SourceEncoding::Q4_1);
        for j in 0..16 {
            assert_eq!(v[j], 0.5 * j as f32 - 1.0, "value {j}");
            assert_eq!(v[j + 16], 0.5 * (15 - j) as f32 - 1.0, "value {}", j + 16);
        }
        // Q4_0: d = 2; nibbles 15 and 0 → 2·(15 − 8) and 2·(0 − 8).
        let mut q40 = vec![0x00, 0x40];
        q40.extend([0x0f; 16]);
        let v = f32s(&q40, SourceEncoding::Q4_0);
        assert_eq!((v[0], v[16]), (14.0, -16.0));
        // Q8_0: d = 0.25, q = -128..=127 by steps.
        let mut q80 = vec![0x00, 0x34];
        q80.extend((0..32).map(|j: i32| (j * 8 - 128) as i8 as u8));
        let v = f32s(&q80, SourceEncoding::Q8_0);
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, 0.25 * (j as f32 * 8.0 - 128.0));
        }
        // Two blocks decode one after the other; a partial block is refused.
        let two = [q80.clone(), q80].concat();
        assert_eq!(f32s(&two, SourceEncoding::Q8_0).len(), 64);
        assert!(decode(&two[..40], SourceEncoding::Q8_0, DType::F32).is_err());
    }

    #[test]
    fn q4_1s_sum_rounds_once_to_nearest_even() {
        // d·q is exact in f32 (11 + 4 bits); d·q + m rounds once: 1 + 2⁻²⁴
        // (m the smallest f16 subnormal) is halfway between 1 and the next
        // f32, and goes to the even one, 1.
        let mut block = vec![0x00, 0x3c, 0x01, 0x00];
        block.extend([0x01; 16]);
        let v = f32s(&block, SourceEncoding::Q4_1);
        assert_eq!(v[0], 1.0);
        assert_eq!(v[16], 2f32.powi(-24), "q = 0: m itself");
    }
}
