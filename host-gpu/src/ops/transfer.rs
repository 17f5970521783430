//! Getting data in and out of a session: uploads, decoding job inputs
//! (`from_encoded`, and `from_encoded_resident` through the device's
//! resident store, `crate::resident`), `fill`, and reads. Decoding owns its
//! shape rule (the bytes must be exactly the shape's elements in the
//! encoding) and its work formula (bytes read plus bytes written, no FLOPs).

use std::sync::Arc;
use std::time::Instant;

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, SourceEncoding};
use crate::resident::ContentKey;
use crate::session::{Session, tensor_ref, to_work};
use crate::tensor::Tensor;

impl Session {
    /// An f32 tensor from host data.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `data.len()` is not the product of `shape`;
    /// [`Error::InvalidArgument`] for a shape past the rank limit or too large
    /// to address; [`Error::QuotaExceeded`] / [`Error::WorkBudgetExhausted`]
    /// past the limits.
    pub fn upload_f32(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Tensor, Error> {
        let what = "upload_f32";
        let bytes = self.check_upload(what, shape, data.len(), DType::F32)?;
        let buffer = self.device().backend().upload_f32(&data)?;
        Ok(self.adopt(buffer, shape.to_vec(), DType::F32, bytes))
    }

    /// An i32 tensor from host data.
    ///
    /// # Errors
    ///
    /// As [`Session::upload_f32`].
    pub fn upload_i32(&mut self, shape: &[usize], data: Vec<i32>) -> Result<Tensor, Error> {
        let what = "upload_i32";
        let bytes = self.check_upload(what, shape, data.len(), DType::I32)?;
        let buffer = self.device().backend().upload_i32(&data)?;
        Ok(self.adopt(buffer, shape.to_vec(), DType::I32, bytes))
    }

    /// A tensor from little-endian bytes in `encoding` (f32/f16/bf16 → f32, i32/i64 → i32).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `bytes` is not exactly `shape`'s element
    /// count times the encoded size; [`Error::InvalidArgument`] for an i64
    /// outside i32 (checked before anything is charged) or a bad shape;
    /// quota and budget errors as usual.
    pub fn from_encoded(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
    ) -> Result<Tensor, Error> {
        self.decode(shape, encoding, bytes, None)
    }

    /// As [`Session::from_encoded`], but the device may hand back the buffer
    /// an earlier job decoded from the same content, and keeps this one for
    /// later jobs (see [`crate::resident`]). `key` must name the content of
    /// `bytes`: equal keys for different bytes would give a job another
    /// job's values. Work and quota are charged exactly as for a decode, so
    /// a job's outcome and receipt do not depend on what the device kept.
    ///
    /// # Errors
    ///
    /// As [`Session::from_encoded`].
    ///
    /// # Example
    ///
    /// ```
    /// use assay_host_gpu::resident::ContentKey;
    /// use assay_host_gpu::{Device, Session, SessionLimits, SourceEncoding};
    ///
    /// let device = Device::cpu();
    /// let bytes: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let key = ContentKey(*b"three floats: 1, 2 and 3........");
    /// for _job in 0..2 {
    ///     let mut s = Session::new(device.clone(), SessionLimits::default());
    ///     let t = s.from_encoded_resident(&[3], SourceEncoding::F32, &bytes, key)?;
    ///     assert_eq!(s.read_f32(&t)?, [1.0, 2.0, 3.0]);
    /// }
    /// assert_eq!(device.resident_stats().hits, 1);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn from_encoded_resident(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
        key: ContentKey,
    ) -> Result<Tensor, Error> {
        self.decode(shape, encoding, bytes, Some(key))
    }

    /// A tensor that keeps GGML blocks as they are (its dtype
    /// [`DType::Q4_0`], [`DType::Q4_1`] or [`DType::Q8_0`]): the f32 values
    /// [`Session::from_encoded`] would decode, at 4.5 to 8.5 bits each, for
    /// `matmul`/`linear` (as the transposed `b`) and `gather` (as the
    /// table). The device may hand back the buffer an earlier job made from
    /// the same content `key`, as [`Session::from_encoded_resident`] does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an encoding without blocks;
    /// otherwise as [`Session::from_encoded`].
    pub fn blocks_from_encoded(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
        key: Option<ContentKey>,
    ) -> Result<Tensor, Error> {
        let Some(dtype) = encoding.blocks_dtype() else {
            return Err(Error::InvalidArgument(format!(
                "blocks_from_encoded: {encoding:?} has no blocks to keep; decode it with from_encoded"
            )));
        };
        self.make_from_encoded("blocks_from_encoded", shape, encoding, dtype, bytes, key)
    }

    fn decode(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
        key: Option<ContentKey>,
    ) -> Result<Tensor, Error> {
        self.make_from_encoded(
            "from_encoded",
            shape,
            encoding,
            encoding.dtype(),
            bytes,
            key,
        )
    }

    /// A tensor of `dtype` from `bytes` in `encoding`: decoded, or its
    /// blocks kept when `dtype` is a block dtype.
    fn make_from_encoded(
        &mut self,
        what: &'static str,
        shape: &[usize],
        encoding: SourceEncoding,
        dtype: DType,
        bytes: &[u8],
        key: Option<ContentKey>,
    ) -> Result<Tensor, Error> {
        let (numel, out_bytes) = self.checked_size(what, shape, dtype)?;
        let (block_values, block_bytes) = encoding.block();
        if encoding.is_blocked() && shape.last().is_none_or(|d| d % block_values != 0) {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} as {encoding:?}: rows must be whole blocks of {block_values} values \
                 (the last dimension a multiple of {block_values})"
            )));
        }
        // Kept blocks with no values (a row of zero blocks, or no rows)
        // would be a tensor no op can read; the device's layout has no
        // such thing.
        if dtype.is_blocks() && numel == 0 {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} holds no values; kept {encoding:?} blocks need at least one row of one block"
            )));
        }
        let Some(expected) = encoding.encoded_len(numel) else {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} is not whole {encoding:?} blocks"
            )));
        };
        if bytes.len() != expected {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} as {encoding:?} needs {expected} bytes ({numel} elements, \
                 {block_bytes} bytes per {block_values}) but the range holds {}",
                bytes.len()
            )));
        }
        if encoding == SourceEncoding::I64
            && let Some((at, v)) = first_i64_outside_i32(bytes)
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: i64 element {at} is {v}, which does not fit in i32; only i32-sized values can be narrowed"
            )));
        }
        let work = to_work(what, 0, bytes.len() as u128 + out_bytes as u128)?;
        self.charge(what, work, out_bytes)?;
        let start = Instant::now();
        let resident = self.device().resident();
        let kept = key.and_then(|k| resident.get(k, encoding, dtype, bytes.len()));
        let buffer = match kept {
            Some(buffer) => buffer,
            None => {
                let backend = self.device().backend();
                let buffer: Arc<dyn crate::backend::DeviceBuffer> =
                    Arc::from(if dtype.is_blocks() {
                        backend.upload_blocks(
                            bytes,
                            encoding,
                            shape.last().copied().unwrap_or(0),
                        )?
                    } else {
                        backend.upload_encoded(bytes, encoding, dtype)?
                    });
                if let Some(k) = key {
                    resident.keep(
                        k,
                        encoding,
                        dtype,
                        bytes.len(),
                        Arc::clone(&buffer),
                        out_bytes,
                    );
                }
                buffer
            }
        };
        let t = self.adopt_shared(buffer, shape.to_vec(), dtype, out_bytes);
        self.record(what, start, 0);
        Ok(t)
    }

    /// A tensor with every element equal to `value` (a NaN is stored canonical).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad shape; quota and budget errors as usual.
    pub fn fill(&mut self, shape: &[usize], value: f32) -> Result<Tensor, Error> {
        let what = "fill";
        self.op(what, Op::Fill { value }, &[], shape.to_vec(), DType::F32, 0)
    }

    /// The elements of an f32 tensor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another dtype or a tensor of another
    /// session; [`Error::Device`] if the device fails.
    pub fn read_f32(&self, x: &Tensor) -> Result<Vec<f32>, Error> {
        self.check_read("read_f32", x, DType::F32)?;
        self.device().backend().read_f32(tensor_ref(x))
    }

    /// The elements of an i32 tensor.
    ///
    /// # Errors
    ///
    /// As [`Session::read_f32`].
    pub fn read_i32(&self, x: &Tensor) -> Result<Vec<i32>, Error> {
        self.check_read("read_i32", x, DType::I32)?;
        self.device().backend().read_i32(tensor_ref(x))
    }

    /// The tensor's elements as little-endian bytes (for outputs); a
    /// tensor of blocks gives its blocks as GGML stores them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a tensor of another session;
    /// [`Error::Device`] if the device fails.
    pub fn read_bytes(&self, x: &Tensor) -> Result<Vec<u8>, Error> {
        self.check_read("read_bytes", x, x.dtype)?;
        Ok(match x.dtype {
            DType::Q4_0 | DType::Q4_1 | DType::Q8_0 => {
                self.device().backend().read_blocks(tensor_ref(x))?
            }
            DType::F32 => self
                .read_f32(x)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            DType::I32 => self
                .read_i32(x)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        })
    }

    /// Checks an upload of `len` elements as `shape` and charges it; returns its bytes.
    fn check_upload(
        &mut self,
        what: &str,
        shape: &[usize],
        len: usize,
        dtype: DType,
    ) -> Result<u64, Error> {
        let (numel, bytes) = self.checked_size(what, shape, dtype)?;
        if len != numel {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} holds {numel} elements but {len} were given"
            )));
        }
        // Reads the guest's data and writes the tensor.
        let work = to_work(what, 0, 2 * bytes as u128)?;
        self.charge(what, work, bytes)?;
        Ok(bytes)
    }

    fn check_read(&self, what: &str, x: &Tensor, dtype: DType) -> Result<(), Error> {
        self.check_inputs(what, &[("x", x, Some(dtype))])
    }
}

/// The first little-endian i64 in `bytes` that does not fit in i32.
pub(crate) fn first_i64_outside_i32(bytes: &[u8]) -> Option<(usize, i64)> {
    bytes.chunks_exact(8).enumerate().find_map(|(at, c)| {
        let v = i64::from_le_bytes(c.try_into().ok()?);
        i32::try_from(v).is_err().then_some((at, v))
    })
}
