//! Reading [safetensors](https://huggingface.co/docs/safetensors) files
//! without copying the weights through guest memory.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, then `N`
//! bytes of JSON describing each tensor (`dtype`, `shape`, `data_offsets`
//! relative to the data section), then the data section. [`SafeTensors::open`]
//! reads only the 8 + `N` header bytes into the guest and checks every entry;
//! [`SafeTensors::load`] asks the host to build the device tensor straight
//! from the input's bytes (`tensor-from-input`).
//!
//! | safetensors dtype | host tensor |
//! | --- | --- |
//! | `F32` | f32 |
//! | `F16`, `BF16` | f32 (widened exactly) |
//! | `I32` | i32 |
//! | `I64` | i32 (refused if a value does not fit) |
//! | anything else | [`Error::Unsupported`]; the raw bytes are still readable with [`SafeTensors::read_bytes`] |
//!
//! # Example
//! ```no_run
//! use assay_guest::{Result, SafeTensors};
//!
//! fn load_embeddings() -> Result<()> {
//!     let model = SafeTensors::open("model")?;
//!     for (name, info) in model.iter() {
//!         assay_guest::log!("{name}: {:?} {:?}", info.dtype, info.shape);
//!     }
//!     let table = model.load("embeddings.word_embeddings.weight")?; // [vocab, d]
//!     let ln_g = model.load("embeddings.LayerNorm.weight")?;
//!     Ok(())
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::io;
use crate::{Encoding, Error, Result, Tensor};

/// Largest header accepted (as the reference implementation: 100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The element type of a tensor in a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `BOOL`
    Bool,
    /// `U8`
    U8,
    /// `I8`
    I8,
    /// `F8_E5M2`
    F8E5M2,
    /// `F8_E4M3`
    F8E4M3,
    /// `I16`
    I16,
    /// `U16`
    U16,
    /// `F16`
    F16,
    /// `BF16`
    BF16,
    /// `I32`
    I32,
    /// `U32`
    U32,
    /// `F32`
    F32,
    /// `F64`
    F64,
    /// `I64`
    I64,
    /// `U64`
    U64,
    /// A dtype string this SDK does not know.
    Other(String),
}

impl DataType {
    /// Parses a header's `dtype` string.
    pub fn parse(s: &str) -> DataType {
        match s {
            "BOOL" => DataType::Bool,
            "U8" => DataType::U8,
            "I8" => DataType::I8,
            "F8_E5M2" => DataType::F8E5M2,
            "F8_E4M3" => DataType::F8E4M3,
            "I16" => DataType::I16,
            "U16" => DataType::U16,
            "F16" => DataType::F16,
            "BF16" => DataType::BF16,
            "I32" => DataType::I32,
            "U32" => DataType::U32,
            "F32" => DataType::F32,
            "F64" => DataType::F64,
            "I64" => DataType::I64,
            "U64" => DataType::U64,
            other => DataType::Other(other.to_owned()),
        }
    }

    /// The header's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            DataType::Bool => "BOOL",
            DataType::U8 => "U8",
            DataType::I8 => "I8",
            DataType::F8E5M2 => "F8_E5M2",
            DataType::F8E4M3 => "F8_E4M3",
            DataType::I16 => "I16",
            DataType::U16 => "U16",
            DataType::F16 => "F16",
            DataType::BF16 => "BF16",
            DataType::I32 => "I32",
            DataType::U32 => "U32",
            DataType::F32 => "F32",
            DataType::F64 => "F64",
            DataType::I64 => "I64",
            DataType::U64 => "U64",
            DataType::Other(s) => s,
        }
    }

    /// Bytes per element, if known.
    pub fn size(&self) -> Option<u64> {
        Some(match self {
            DataType::Bool | DataType::U8 | DataType::I8 | DataType::F8E5M2 | DataType::F8E4M3 => 1,
            DataType::I16 | DataType::U16 | DataType::F16 | DataType::BF16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::F64 | DataType::I64 | DataType::U64 => 8,
            DataType::Other(_) => return None,
        })
    }

    /// How the host decodes it, if the host can load it.
    pub fn encoding(&self) -> Option<Encoding> {
        match self {
            DataType::F32 => Some(Encoding::F32),
            DataType::F16 => Some(Encoding::F16),
            DataType::BF16 => Some(Encoding::Bf16),
            DataType::I32 => Some(Encoding::I32),
            DataType::I64 => Some(Encoding::I64),
            _ => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: DataType,
    /// Dimensions, outermost first.
    pub shape: Vec<u64>,
    /// `[start, end)` in bytes, relative to the start of the data section.
    pub data_offsets: (u64, u64),
    /// `start` relative to the start of the input (8 + header length + start).
    pub offset_in_input: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Length of the data in bytes.
    pub fn byte_len(&self) -> u64 {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// The parsed header of a safetensors input. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SafeTensors {
    input: String,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

impl SafeTensors {
    /// Reads and checks the header of input `input` (only the header bytes
    /// pass through guest memory).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such input; [`Error::Format`] if the
    /// header is malformed: too short, a header length past the input or
    /// over [`MAX_HEADER_LEN`], invalid JSON, an entry without
    /// `dtype`/`shape`/`data_offsets`, or data offsets outside the data
    /// section or not matching the shape.
    pub fn open(input: &str) -> Result<SafeTensors> {
        let size = io::input_size(input)?;
        if size < 8 {
            return Err(Error::Format(format!(
                "safetensors input `{input}` is {size} bytes, too short for the 8-byte header length"
            )));
        }
        let prefix = io::read_input_range(input, 0, 8)?;
        let len_bytes: [u8; 8] = prefix.as_slice().try_into().map_err(|_| {
            Error::Format(format!(
                "safetensors input `{input}`: short read of the header length"
            ))
        })?;
        let header_len = u64::from_le_bytes(len_bytes);
        check_header_len(input, header_len, size)?;
        let header = io::read_input_range(input, 8, header_len)?;
        Self::parse_header(input, &header, size)
    }

    /// Parses a header that is already in memory: `header` is the JSON (the
    /// `N` bytes after the 8-byte length), `input_size` the size of the whole
    /// input. [`SafeTensors::open`] calls this; it needs no host, so it is
    /// also how to test header handling.
    ///
    /// # Errors
    /// [`Error::Format`] as for [`SafeTensors::open`].
    ///
    /// # Example
    /// ```
    /// use assay_guest::SafeTensors;
    /// let json = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    /// let size = 8 + json.len() as u64 + 16;
    /// let st = SafeTensors::parse_header("model", json, size)?;
    /// assert_eq!(st.get("w").map(|i| i.offset_in_input), Some(8 + json.len() as u64));
    /// # Ok::<(), assay_guest::Error>(())
    /// ```
    pub fn parse_header(input: &str, header: &[u8], input_size: u64) -> Result<SafeTensors> {
        let header_len = header.len() as u64;
        check_header_len(input, header_len, input_size)?;
        let bad = |m: String| Error::Format(format!("safetensors input `{input}`: {m}"));
        let data_start = 8 + header_len;
        let data_len = input_size - data_start;

        let json: Value = serde_json::from_slice(header)
            .map_err(|e| bad(format!("the header is not valid JSON: {e}")))?;
        let Value::Object(entries) = json else {
            return Err(bad("the header is not a JSON object".into()));
        };
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, entry) in entries {
            if name == "__metadata__" {
                let Value::Object(map) = entry else {
                    return Err(bad("`__metadata__` is not an object".into()));
                };
                for (k, v) in map {
                    let Value::String(v) = v else {
                        return Err(bad(format!("`__metadata__.{k}` is not a string")));
                    };
                    metadata.insert(k, v);
                }
                continue;
            }
            let info = parse_entry(&entry, data_start, data_len)
                .map_err(|m| bad(format!("tensor `{name}`: {m}")))?;
            tensors.insert(name, info);
        }
        Ok(SafeTensors {
            input: input.to_owned(),
            tensors,
            metadata,
        })
    }

    /// The input this header was read from.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Every tensor's name and entry, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorInfo)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The entry of tensor `name`, if present.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The header's `__metadata__` (string to string).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The entry of tensor `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`], suggesting similar names, if there is none.
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::NotFound(self.missing_message(name)))
    }

    fn missing_message(&self, name: &str) -> String {
        let mut msg = format!(
            "safetensors input `{}` has no tensor named `{name}` ({} tensors)",
            self.input,
            self.tensors.len()
        );
        let last = name.rsplit('.').next().unwrap_or(name);
        let similar: Vec<&str> = self
            .names()
            .filter(|n| self.tensors.len() <= 8 || n.ends_with(last) || n.contains(name))
            .take(8)
            .collect();
        if !similar.is_empty() {
            let list: Vec<String> = similar.iter().map(|n| format!("`{n}`")).collect();
            msg.push_str(&format!("; it has {}", list.join(", ")));
        }
        msg
    }

    /// Makes a device tensor from tensor `name`, straight from the input's
    /// bytes (see the dtype table in the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such tensor; [`Error::Unsupported`]
    /// for a dtype the host cannot load; [`Error::InvalidArgument`] for a
    /// dimension past `u32` (or an I64 value past i32); [`Error::QuotaExceeded`]
    /// past the job's GPU memory quota.
    pub fn load(&self, name: &str) -> Result<Tensor> {
        let info = self.info(name)?;
        let Some(encoding) = info.dtype.encoding() else {
            return Err(Error::Unsupported(format!(
                "tensor `{name}` of safetensors input `{}` has dtype {}; the host loads F32, F16, BF16, I32 and I64 \
                 (read other dtypes' raw bytes with `read_bytes`)",
                self.input, info.dtype
            )));
        };
        let shape = crate::shape::file_dims(name, &info.shape)?;
        Tensor::from_input(&self.input, info.offset_in_input, encoding, &shape)
            .map_err(|e| e.context(format_args!("loading tensor `{name}` of `{}`", self.input)))
    }

    /// The raw little-endian bytes of tensor `name`, copied into guest memory
    /// (for dtypes the host does not load, or small tensors the guest uses itself).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such tensor.
    pub fn read_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let info = self.info(name)?;
        io::read_input_range(&self.input, info.offset_in_input, info.byte_len())
    }
}

fn check_header_len(input: &str, header_len: u64, input_size: u64) -> Result<()> {
    if header_len > MAX_HEADER_LEN {
        return Err(Error::Format(format!(
            "safetensors input `{input}`: the header length {header_len} is over the {MAX_HEADER_LEN}-byte limit \
             (is this a safetensors file?)"
        )));
    }
    if input_size < 8 || header_len > input_size - 8 {
        return Err(Error::Format(format!(
            "safetensors input `{input}`: the header length {header_len} runs past the end of the {input_size}-byte input \
             (is this a safetensors file?)"
        )));
    }
    Ok(())
}

fn parse_entry(
    entry: &Value,
    data_start: u64,
    data_len: u64,
) -> core::result::Result<TensorInfo, String> {
    let Value::Object(obj) = entry else {
        return Err("the entry is not an object".into());
    };
    let dtype = match obj.get("dtype") {
        Some(Value::String(s)) => DataType::parse(s),
        Some(_) => return Err("`dtype` is not a string".into()),
        None => return Err("no `dtype`".into()),
    };
    let shape = match obj.get("shape") {
        Some(Value::Array(dims)) => dims
            .iter()
            .map(|d| {
                d.as_u64()
                    .ok_or_else(|| format!("`shape` {dims:?} has a non-integer dimension"))
            })
            .collect::<core::result::Result<Vec<u64>, String>>()?,
        Some(_) => return Err("`shape` is not an array".into()),
        None => return Err("no `shape`".into()),
    };
    let (start, end) = match obj.get("data_offsets") {
        Some(Value::Array(o)) => match o.as_slice() {
            [s, e] => match (s.as_u64(), e.as_u64()) {
                (Some(s), Some(e)) => (s, e),
                _ => return Err(format!("`data_offsets` {o:?} are not two integers")),
            },
            _ => return Err(format!("`data_offsets` {o:?} are not two integers")),
        },
        Some(_) => return Err("`data_offsets` is not an array".into()),
        None => return Err("no `data_offsets`".into()),
    };
    if start > end {
        return Err(format!(
            "`data_offsets` [{start}, {end}] end before they start"
        ));
    }
    if end > data_len {
        return Err(format!(
            "`data_offsets` [{start}, {end}] lie outside the {data_len}-byte data section"
        ));
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if let Some(size) = dtype.size() {
        let want = numel
            .checked_mul(size)
            .ok_or_else(|| format!("shape {shape:?} overflows"))?;
        if want != end - start {
            return Err(format!(
                "{dtype} {shape:?} needs {want} bytes but `data_offsets` [{start}, {end}] span {}",
                end - start
            ));
        }
    }
    Ok(TensorInfo {
        dtype,
        shape,
        data_offsets: (start, end),
        offset_in_input: data_start + start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, data_len: u64) -> Result<SafeTensors> {
        SafeTensors::parse_header("m", json.as_bytes(), 8 + json.len() as u64 + data_len)
    }

    #[test]
    fn parses_entries_and_metadata() -> Result<()> {
        let json = r#"{"__metadata__":{"format":"pt"},
            "b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},
            "a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},
            "ids":{"dtype":"I64","shape":[1],"data_offsets":[22,30]},
            "flags":{"dtype":"BOOL","shape":[2],"data_offsets":[30,32]}}"#;
        let st = parse(json, 32)?;
        assert_eq!(st.len(), 4);
        assert_eq!(
            st.names().collect::<Vec<_>>(),
            vec!["a", "b", "flags", "ids"]
        );
        assert_eq!(st.metadata().get("format").map(String::as_str), Some("pt"));
        let b = st.info("b")?;
        assert_eq!(b.dtype, DataType::BF16);
        assert_eq!(b.shape, vec![3]);
        assert_eq!(b.offset_in_input, 8 + json.len() as u64 + 16);
        assert_eq!(b.dtype.encoding(), Some(Encoding::Bf16));
        assert_eq!(st.info("flags")?.dtype.encoding(), None);
        Ok(())
    }

    #[test]
    fn missing_names_are_not_found_with_suggestions() -> Result<()> {
        let json = r#"{"enc.0.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let st = parse(json, 4)?;
        match st.info("enc.1.weight") {
            Err(Error::NotFound(m)) => {
                assert!(m.contains("no tensor named `enc.1.weight`"), "{m}");
                assert!(m.contains("`enc.0.weight`"), "{m}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn out_of_range_offsets_are_format_errors() {
        let json = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        match parse(json, 8) {
            Err(Error::Format(m)) => {
                assert!(m.contains("tensor `a`") && m.contains("outside"), "{m}")
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn size_mismatch_is_a_format_error() {
        let json = r#"{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}}"#;
        match parse(json, 16) {
            Err(Error::Format(m)) => assert!(m.contains("needs 8 bytes"), "{m}"),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_headers() {
        for (json, want) in [
            ("not json", "not valid JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, "no `dtype`"),
            (
                r#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#,
                "no `shape`",
            ),
            (r#"{"a":{"dtype":"F32","shape":[1]}}"#, "no `data_offsets`"),
            (
                r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                "non-integer",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
                "end before",
            ),
            (r#"{"__metadata__":{"k":1}}"#, "not a string"),
        ] {
            match parse(json, 4) {
                Err(Error::Format(m)) => assert!(m.contains(want), "{json}: {m}"),
                other => panic!("{json}: expected a format error, got {other:?}"),
            }
        }
    }

    #[test]
    fn header_length_checks() {
        assert!(matches!(
            check_header_len("m", 100, 50),
            Err(Error::Format(_))
        ));
        assert!(matches!(
            check_header_len("m", MAX_HEADER_LEN + 1, u64::MAX),
            Err(Error::Format(_))
        ));
        assert!(check_header_len("m", 42, 50).is_ok());
        assert!(matches!(check_header_len("m", 0, 4), Err(Error::Format(_))));
    }

    #[test]
    fn load_refuses_missing_and_unsupported_before_asking_the_host() -> Result<()> {
        let json = r#"{"m":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
        let st = parse(json, 2)?;
        match st.load("m") {
            Err(Error::Unsupported(m)) => assert!(m.contains("dtype U8"), "{m}"),
            other => panic!("expected unsupported, got {other:?}"),
        }
        assert!(matches!(st.load("nope"), Err(Error::NotFound(_))));
        Ok(())
    }

    #[test]
    fn unknown_dtypes_parse_but_do_not_load() -> Result<()> {
        let json = r#"{"q":{"dtype":"Q4_K","shape":[32],"data_offsets":[0,18]}}"#;
        let st = parse(json, 18)?;
        let q = st.info("q")?;
        assert_eq!(q.dtype, DataType::Other("Q4_K".into()));
        assert_eq!(q.dtype.encoding(), None);
        assert_eq!(q.byte_len(), 18);
        Ok(())
    }
}
