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

/// Decodes `bytes` (exactly `n · encoded_size` long) to `dtype`.
pub(super) fn decode(
    bytes: &[u8],
    encoding: SourceEncoding,
    dtype: DType,
) -> Result<Values, Error> {
    let size = encoding.size();
    if !bytes.len().is_multiple_of(size) {
        return Err(Error::Device(format!(
            "cpu: {} bytes is not a whole number of {size}-byte elements",
            bytes.len()
        )));
    }
    let n = bytes.len() / size;
    let chunks = bytes.chunks_exact(size);
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
