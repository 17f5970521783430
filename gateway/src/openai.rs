//! OpenAI's embeddings API, as this gateway speaks it: parsing and checking
//! a request (pure; no network) and writing the response.
//!
//! `input` is a string, an array of strings, an array of token ids, or an
//! array of token-id arrays. Token ids are the model's own vocabulary (for
//! all-MiniLM-L6-v2: BERT's WordPiece ids); the job puts `[CLS]` and `[SEP]`
//! around them, as it does around a tokenized text. `encoding_format` is
//! `float` (the default) or `base64` (the little-endian f32 bytes, what the
//! official Python and Node clients ask for and decode). `dimensions` is
//! refused unless it is the model's width: MiniLM cannot shorten its
//! embeddings. `user` is accepted and ignored.
//!
//! Floats are written as the f64 of each f32, so every digit string parses
//! back to exactly the f32 the job computed: JSON floats and base64 carry
//! the same bits.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::Error;

/// The most sequences one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;
/// The most bytes of one string input.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The most ids of one token-array input.
pub const MAX_TOKEN_IDS: usize = 8192;

/// A model this gateway serves, and the names it answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCard {
    /// The names a request may use; the first is the canonical one.
    pub names: Vec<String>,
    /// Who made it (`owned_by`).
    pub owned_by: String,
    /// The embedding width.
    pub dimensions: usize,
    /// Token ids must be below this.
    pub vocab_size: u64,
}

impl ModelCard {
    /// all-MiniLM-L6-v2 with its vocabulary size.
    pub fn minilm(vocab_size: u64) -> ModelCard {
        ModelCard {
            names: vec![
                "all-MiniLM-L6-v2".into(),
                "sentence-transformers/all-MiniLM-L6-v2".into(),
            ],
            owned_by: "sentence-transformers".into(),
            dimensions: 384,
            vocab_size,
        }
    }

    /// Whether `name` names this model.
    pub fn answers_to(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// One sequence to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequence {
    /// A text, tokenized by the gateway as the guest would.
    Text(String),
    /// Token ids of a text (without `[CLS]`/`[SEP]`).
    Tokens(Vec<u32>),
}

/// How the embeddings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// JSON numbers.
    Float,
    /// Base64 of the little-endian f32 bytes.
    Base64,
}

/// A checked embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    /// The model name as asked (echoed in the response).
    pub model: String,
    /// The sequences, in order.
    pub input: Vec<Sequence>,
    /// How to write the vectors.
    pub encoding_format: EncodingFormat,
}

impl EmbeddingsRequest {
    /// Parses and checks a request body against `card`.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] naming the field at fault, or
    /// [`Error::ModelNotFound`].
    pub fn parse(body: &[u8], card: &ModelCard) -> Result<EmbeddingsRequest, Error> {
        let fields = json_object(body)?;
        let model = model_field(&fields, "all-MiniLM-L6-v2")?;
        if !card.answers_to(&model) {
            return Err(Error::ModelNotFound(model));
        }
        let input = match fields.get("input") {
            Some(v) => parse_input(v, card.vocab_size)?,
            None => {
                return Err(Error::BadRequest {
                    message: "you must provide an input parameter: a string, an array of strings, or token arrays".into(),
                    param: Some("input"),
                    code: "missing_required_parameter",
                });
            }
        };
        let encoding_format = match fields.get("encoding_format") {
            None | Some(Value::Null) => EncodingFormat::Float,
            Some(Value::String(f)) if f == "float" => EncodingFormat::Float,
            Some(Value::String(f)) if f == "base64" => EncodingFormat::Base64,
            Some(other) => {
                return Err(Error::bad(
                    "encoding_format",
                    format!("encoding_format must be \"float\" or \"base64\", not {other}"),
                ));
            }
        };
        match fields.get("dimensions") {
            None | Some(Value::Null) => {}
            Some(d) if d.as_u64() == Some(card.dimensions as u64) => {}
            Some(d) => {
                return Err(Error::bad(
                    "dimensions",
                    format!(
                        "{model} makes {}-dimension embeddings and cannot shorten them (asked for {d}); leave `dimensions` out or set it to {}",
                        card.dimensions, card.dimensions
                    ),
                ));
            }
        }
        match fields.get("user") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return Err(Error::bad("user", "`user` must be a string")),
        }
        Ok(EmbeddingsRequest {
            model,
            input,
            encoding_format,
        })
    }
}

/// A request body as a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Error> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Error::BadRequest {
        message: format!("the body is not JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    match v {
        Value::Object(fields) => Ok(fields),
        _ => Err(Error::BadRequest {
            message: "the body must be a JSON object".into(),
            param: None,
            code: "invalid_json",
        }),
    }
}

/// The request's `model`, which it must have (`example` names one).
pub(crate) fn model_field(
    fields: &serde_json::Map<String, Value>,
    example: &str,
) -> Result<String, Error> {
    match fields.get("model") {
        Some(Value::String(m)) => Ok(m.clone()),
        Some(_) => Err(Error::bad("model", "`model` must be a string")),
        None => Err(Error::BadRequest {
            message: format!("you must provide a model parameter (e.g. {example:?})"),
            param: Some("model"),
            code: "missing_required_parameter",
        }),
    }
}

fn parse_input(v: &Value, vocab: u64) -> Result<Vec<Sequence>, Error> {
    let items = match v {
        Value::String(s) => return Ok(vec![text(s, None)?]),
        Value::Array(items) => items,
        _ => {
            return Err(Error::bad(
                "input",
                "input must be a string, an array of strings, an array of token ids, or an array of token-id arrays",
            ));
        }
    };
    if items.is_empty() {
        return Err(Error::bad("input", "input must not be an empty array"));
    }
    if items.len() > MAX_INPUTS {
        return Err(Error::bad(
            "input",
            format!(
                "input has {} items; at most {MAX_INPUTS} per request",
                items.len()
            ),
        ));
    }
    // An array of numbers is one token sequence.
    if items.iter().all(Value::is_number) {
        return Ok(vec![Sequence::Tokens(token_ids(items, None, vocab)?)]);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => text(s, Some(i)),
            Value::Array(ids) => Ok(Sequence::Tokens(token_ids(ids, Some(i), vocab)?)),
            _ => Err(Error::bad(
                "input",
                format!("input[{i}] must be a string or an array of token ids"),
            )),
        })
        .collect()
}

fn at(index: Option<usize>) -> String {
    index
        .map(|i| format!("input[{i}]"))
        .unwrap_or_else(|| "input".into())
}

fn text(s: &str, index: Option<usize>) -> Result<Sequence, Error> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(Error::bad(
            "input",
            format!(
                "{} is {} bytes; at most {MAX_TEXT_BYTES}",
                at(index),
                s.len()
            ),
        ));
    }
    Ok(Sequence::Text(s.to_owned()))
}

fn token_ids(ids: &[Value], index: Option<usize>, vocab: u64) -> Result<Vec<u32>, Error> {
    if ids.len() > MAX_TOKEN_IDS {
        return Err(Error::bad(
            "input",
            format!(
                "{} has {} token ids; at most {MAX_TOKEN_IDS}",
                at(index),
                ids.len()
            ),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(k, id)| {
            id.as_u64()
                .filter(|&t| t < vocab)
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| {
                    Error::bad(
                        "input",
                        format!(
                            "{}[{k}] = {id} is not a token id of this model (integers 0..{vocab})",
                            at(index)
                        ),
                    )
                })
        })
        .collect()
}

/// What the network computed for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// One row per sequence, little-endian f32 bytes.
    pub rows: Vec<Vec<u8>>,
    /// Tokens the model saw, all sequences together (`[CLS]`/`[SEP]` included).
    pub prompt_tokens: u64,
}

/// The response body for `req`, with `assay` (the job's ids) added.
pub fn response(req: &EmbeddingsRequest, out: &Embedded, assay: Value) -> Value {
    let data: Vec<Value> = out
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let embedding = match req.encoding_format {
                EncodingFormat::Base64 => {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(row))
                }
                EncodingFormat::Float => Value::Array(
                    row.chunks_exact(4)
                        .map(|b| {
                            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                            json!(f64::from(v))
                        })
                        .collect(),
                ),
            };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": { "prompt_tokens": out.prompt_tokens, "total_tokens": out.prompt_tokens },
        "assay": assay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> ModelCard {
        ModelCard::minilm(30522)
    }

    fn parse(body: Value) -> Result<EmbeddingsRequest, Error> {
        EmbeddingsRequest::parse(body.to_string().as_bytes(), &card())
    }

    fn param_of(e: Error) -> Value {
        e.body()["error"]["param"].clone()
    }

    #[test]
    fn every_input_shape_parses_to_sequences_in_order() {
        let one = parse(json!({"model": "all-MiniLM-L6-v2", "input": "hi"})).expect("string");
        assert_eq!(one.input, vec![Sequence::Text("hi".into())]);
        assert_eq!(one.encoding_format, EncodingFormat::Float);
        let many = parse(json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": ["a\nb", ""], "encoding_format": "base64"}))
            .expect("strings");
        assert_eq!(
            many.input,
            vec![Sequence::Text("a\nb".into()), Sequence::Text(String::new())]
        );
        assert_eq!(many.encoding_format, EncodingFormat::Base64);
        let ids = parse(json!({"model": "all-MiniLM-L6-v2", "input": [7592, 2088]})).expect("ids");
        assert_eq!(ids.input, vec![Sequence::Tokens(vec![7592, 2088])]);
        let nested = parse(json!({"model": "all-MiniLM-L6-v2", "input": [[1, 2], [3]], "dimensions": 384, "user": "u"}))
            .expect("id arrays");
        assert_eq!(
            nested.input,
            vec![Sequence::Tokens(vec![1, 2]), Sequence::Tokens(vec![3])]
        );
    }

    #[test]
    fn bad_requests_name_their_field() {
        let m = "all-MiniLM-L6-v2";
        assert_eq!(
            param_of(parse(json!({"input": "x"})).expect_err("no model")),
            "model"
        );
        assert_eq!(
            param_of(parse(json!({"model": m})).expect_err("no input")),
            "input"
        );
        assert_eq!(
            param_of(parse(json!({"model": m, "input": []})).expect_err("empty")),
            "input"
        );
        assert_eq!(
            param_of(parse(json!({"model": m, "input": 5})).expect_err("number")),
            "input"
        );
        assert_eq!(
            param_of(parse(json!({"model": m, "input": [1, -1]})).expect_err("negative id")),
            "input"
        );
        assert_eq!(
            param_of(parse(json!({"model": m, "input": [[30522]]})).expect_err("past vocab")),
            "input"
        );
        assert_eq!(
            param_of(parse(json!({"model": m, "input": ["a", 1]})).expect_err("mixed")),
            "input"
        );
        assert_eq!(
            param_of(
                parse(json!({"model": m, "input": "x", "encoding_format": "int8"}))
                    .expect_err("format")
            ),
            "encoding_format"
        );
        let dims =
            parse(json!({"model": m, "input": "x", "dimensions": 256})).expect_err("dimensions");
        assert_eq!(param_of(dims), "dimensions");
        let too_many = vec!["x"; MAX_INPUTS + 1];
        assert!(parse(json!({"model": m, "input": too_many})).is_err());
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(parse(json!({"model": m, "input": long})).is_err());
        assert!(EmbeddingsRequest::parse(b"{not json", &card()).is_err());
        assert!(matches!(
            parse(json!({"model": "gpt-4", "input": "x"})),
            Err(Error::ModelNotFound(_))
        ));
    }

    #[test]
    fn floats_and_base64_carry_the_same_bits() {
        let values = [
            0.1f32,
            -1.0e-38,
            3.4028235e38,
            f32::MIN_POSITIVE,
            0.33333334,
        ];
        let row: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = Embedded {
            rows: vec![row.clone()],
            prompt_tokens: 3,
        };
        let mut req = parse(json!({"model": "all-MiniLM-L6-v2", "input": "x"})).expect("req");
        let body = response(&req, &out, json!({}));
        assert_eq!(body["usage"]["prompt_tokens"], 3);
        let text = body.to_string();
        let back: Value = serde_json::from_str(&text).expect("json");
        let floats: Vec<f32> = back["data"][0]["embedding"]
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(
            floats.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        req.encoding_format = EncodingFormat::Base64;
        let body = response(&req, &out, json!({}));
        let b64 = body["data"][0]["embedding"].as_str().expect("string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        assert_eq!(bytes, row);
    }
}
