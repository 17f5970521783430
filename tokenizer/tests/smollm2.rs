//! SmolLM2-135M-Instruct's tokenizer and chat template against references:
//! the ids of the `tokenizers` library and of an independent Python
//! reimplementation of llama.cpp's tokenizer (which agree), and jinja2's
//! renderings of the chat templates, written into `data/smollm2_cases.json`
//! by `scripts/gen_smollm2_tokenizer_cases.py`.
//!
//! The chat templates are in the fixture; the vocabulary is not (~1.5 MB):
//! the tokenizer tests read it from the GGUF file that `ASSAY_SMOLLM2_GGUF`
//! names, with the small GGUF metadata reader below (the crate itself does
//! not parse GGUF), and print `SKIPPED:` without it (they fail instead if
//! `ASSAY_REQUIRE_SMOLLM2=1`). Run with `--nocapture` to see the timings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use assay_tokenizer::{Bpe, BpeConfig, ChatPiece, ChatTemplate, TokenType, Utf8Stream};
use serde_json::Value;

const CASES: &str = include_str!("data/smollm2_cases.json");

fn fixture() -> Value {
    serde_json::from_str(CASES).expect("data/smollm2_cases.json is JSON")
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("fixture: {key} is not a string"))
}

fn ids(v: &Value) -> Option<Vec<u32>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|id| {
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .expect("fixture: an id")
            })
            .collect()
    })
}

fn messages(v: &Value) -> Vec<(&str, &str)> {
    v["messages"]
        .as_array()
        .expect("fixture: messages")
        .iter()
        .map(|m| {
            let m = m.as_array().expect("fixture: a [role, content] pair");
            (
                m[0].as_str().expect("fixture: role"),
                m[1].as_str().expect("fixture: content"),
            )
        })
        .collect()
}

#[test]
fn chat_templates_render_as_jinja2_does() {
    let fixture = fixture();
    let templates = fixture["templates"].as_object().expect("templates");
    let chats = fixture["chats"].as_array().expect("chats");
    assert!(chats.len() >= 40, "{} chat cases", chats.len());
    for chat in chats {
        let name = text(chat, "template");
        let template = ChatTemplate::new(templates[name].as_str().expect("template"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let messages = messages(chat);
        let generation = chat["add_generation_prompt"].as_bool().expect("flag");
        let want = text(chat, "text");
        assert_eq!(
            template.render(&messages, generation),
            want,
            "{name} {messages:?}"
        );
        let pieces: String = template
            .pieces(&messages, generation)
            .iter()
            .map(ChatPiece::text)
            .collect();
        assert_eq!(pieces, want);
        assert_eq!(
            assay_tokenizer::render_chat(
                templates[name].as_str().expect("template"),
                &messages,
                generation
            )
            .expect("render_chat"),
            want
        );
    }
}

/// The GGUF file, or `None` (after printing why) when the test cannot run.
fn smollm2_gguf() -> Option<Vec<u8>> {
    let required = std::env::var("ASSAY_REQUIRE_SMOLLM2").is_ok_and(|v| v == "1");
    let Some(path) = std::env::var_os("ASSAY_SMOLLM2_GGUF") else {
        assert!(
            !required,
            "ASSAY_REQUIRE_SMOLLM2=1 but ASSAY_SMOLLM2_GGUF is not set: point it at \
             SmolLM2-135M-Instruct.Q4_1.gguf (`assay model fetch smollm2`)"
        );
        println!(
            "SKIPPED smollm2_ids_match_the_references: set ASSAY_SMOLLM2_GGUF to \
             SmolLM2-135M-Instruct.Q4_1.gguf (`assay model fetch smollm2`)"
        );
        return None;
    };
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            assert!(!required, "ASSAY_REQUIRE_SMOLLM2=1: reading {path:?}: {e}");
            println!("SKIPPED smollm2_ids_match_the_references: reading {path:?}: {e}");
            None
        }
    }
}

/// The tokenizer metadata of a SmolLM2 GGUF file.
struct Smollm2 {
    config: BpeConfig,
    template: String,
}

fn smollm2_metadata(file: &[u8]) -> Smollm2 {
    let meta = gguf::metadata(file).expect("a GGUF file");
    let string = |key: &str| match meta.get(key) {
        Some(gguf::Value::Str(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    };
    let strings = |key: &str| match meta.get(key) {
        Some(gguf::Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                gguf::Value::Str(s) => s.clone(),
                other => panic!("{key}: {other:?}"),
            })
            .collect::<Vec<_>>(),
        other => panic!("{key}: {other:?}"),
    };
    let int = |v: &gguf::Value| match v {
        gguf::Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    };
    let id = |key: &str| meta.get(key).map(|v| u32::try_from(int(v)).expect("an id"));
    let token_types = match meta.get("tokenizer.ggml.token_type") {
        Some(gguf::Value::Array(items)) => items
            .iter()
            .map(|v| i32::try_from(int(v)).expect("a token type"))
            .collect(),
        _ => Vec::new(),
    };
    let add_bos = match meta.get("tokenizer.ggml.add_bos_token") {
        Some(gguf::Value::Bool(b)) => Some(*b),
        None => None,
        other => panic!("add_bos_token: {other:?}"),
    };
    Smollm2 {
        config: BpeConfig {
            model: string("tokenizer.ggml.model"),
            pre: string("tokenizer.ggml.pre"),
            tokens: strings("tokenizer.ggml.tokens"),
            merges: strings("tokenizer.ggml.merges"),
            token_types,
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            add_bos,
        },
        template: string("tokenizer.chat_template"),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn smollm2_ids_match_the_references() {
    let Some(file) = smollm2_gguf() else {
        return;
    };
    let fixture = fixture();
    let Smollm2 { config, template } = smollm2_metadata(&file);
    assert_eq!(
        config.tokens.len() as u64,
        fixture["n_tokens"].as_u64().expect("n")
    );
    assert_eq!(
        config.merges.len() as u64,
        fixture["n_merges"].as_u64().expect("n")
    );
    assert_eq!(template, text(&fixture["templates"], "smollm2"));

    // Building, as a guest does once per job.
    let mut times = Vec::new();
    let mut built = None;
    for _ in 0..5 {
        let config = config.clone();
        drop(built.take());
        let start = Instant::now();
        built = Some(Bpe::new(config).expect("SmolLM2's tokenizer"));
        times.push(start.elapsed());
    }
    let bpe = built.expect("built");
    println!(
        "SmolLM2 tokenizer built from {} tokens and {} merges in {:?} (median of 5; min {:?})",
        config.tokens.len(),
        config.merges.len(),
        median(times.clone()),
        times.iter().min().expect("times")
    );
    // The first encoding compiles GPT-2's split regex (once per process).
    let start = Instant::now();
    assert_eq!(bpe.encode("Hello", false).expect("ids"), [19556]);
    println!(
        "first encoding (compiles the split regex): {:?}",
        start.elapsed()
    );
    assert_eq!(bpe.vocab_size(), 49152);
    assert_eq!(
        (bpe.bos(), bpe.eos(), bpe.add_bos()),
        (Some(1), Some(2), false)
    );
    assert_eq!(bpe.token_type(2), Some(TokenType::Control));

    // Bytes SmolLM2 has no token for (dropped by every tokenizer).
    let untokenized = |b: u8| {
        b.is_ascii()
            && bpe
                .encode(std::str::from_utf8(&[b]).expect("ASCII"), false)
                .expect("ids")
                .is_empty()
    };
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let start = Instant::now();
    let mut tokens = 0;
    for case in cases {
        let text = text(case, "text");
        let parse_special = case["parse_special"].as_bool().expect("flag");
        let want = ids(&case["ids"]).expect("ids");
        let got = bpe.encode(text, parse_special).expect("encode");
        assert_eq!(got, want, "{text:?} parse_special={parse_special}");
        tokens += got.len();
    }
    let elapsed = start.elapsed();
    println!(
        "encoded {} cases, {tokens} tokens, in {elapsed:?} ({:.2} µs/token)",
        cases.len(),
        elapsed.as_secs_f64() * 1e6 / tokens.max(1) as f64
    );
    for case in cases {
        let text = text(case, "text");
        let ids = ids(&case["ids"]).expect("ids");
        let kept: Vec<u8> = text.bytes().filter(|&b| !untokenized(b)).collect();
        assert_eq!(bpe.decode(&ids, false), kept, "{text:?}");
        // As a stream, token by token.
        let mut stream = Utf8Stream::default();
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(&stream.push(&bpe.token_bytes(id).expect("a token")));
        }
        streamed.push_str(&stream.finish());
        assert_eq!(streamed.as_bytes(), kept, "{text:?}");
    }

    // Chat prompts: the ids of the whole prompt with control tokens parsed,
    // and where a message holds a control token's text, that text as text.
    let templates = fixture["templates"].as_object().expect("templates");
    let im_end = bpe.token_id("<|im_end|>").expect("<|im_end|>");
    for chat in fixture["chats"].as_array().expect("chats") {
        let name = text(chat, "template");
        let template =
            ChatTemplate::new(templates[name].as_str().expect("template")).expect("template");
        let messages = messages(chat);
        let generation = chat["add_generation_prompt"].as_bool().expect("flag");
        let pieces = template.pieces(&messages, generation);
        let got = bpe.encode_chat(&pieces).expect("encode_chat");
        let rendered = text(chat, "text");
        assert_eq!(bpe.decode(&got, false), rendered.as_bytes());
        match ids(&chat["ids"]) {
            Some(want) => {
                assert_eq!(got, want, "{name} {messages:?}");
                assert_eq!(bpe.encode(rendered, true).expect("ids"), want);
            }
            None => {
                // Injected: only the template's <|im_end|>s are tokens.
                let template_ends = pieces
                    .iter()
                    .filter(|p| matches!(p, ChatPiece::Template(t) if t.contains("<|im_end|>")))
                    .count();
                let ends = got.iter().filter(|&&id| id == im_end).count();
                assert_eq!(ends, template_ends, "{name} {messages:?}");
                assert!(
                    bpe.encode(rendered, true)
                        .expect("ids")
                        .iter()
                        .filter(|&&id| id == im_end)
                        .count()
                        > ends
                );
            }
        }
    }
}

/// Just enough of GGUF to read a tokenizer's metadata: the header's
/// key-value pairs (version 2 or 3), values as strings, integers, bools
/// and arrays of those; floats are skipped.
mod gguf {
    use std::collections::HashMap;

    #[derive(Debug)]
    pub enum Value {
        Str(String),
        Int(i64),
        Bool(bool),
        Array(Vec<Value>),
        /// A float.
        Other,
    }

    struct Cursor<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
            let end = end.ok_or_else(|| format!("cut short at byte {}", self.pos))?;
            let bytes = &self.bytes[self.pos..end];
            self.pos = end;
            Ok(bytes)
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
            let mut out = [0; N];
            out.copy_from_slice(self.take(N)?);
            Ok(out)
        }

        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(self.array()?))
        }

        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(self.array()?))
        }

        fn len(&mut self) -> Result<usize, String> {
            usize::try_from(self.u64()?).map_err(|e| e.to_string())
        }

        fn string(&mut self) -> Result<String, String> {
            let len = self.len()?;
            String::from_utf8(self.take(len)?.to_vec()).map_err(|e| e.to_string())
        }

        fn value(&mut self, ty: u32) -> Result<Value, String> {
            Ok(match ty {
                0 => Value::Int(i64::from(self.array::<1>()?[0])),
                1 => Value::Int(i64::from(i8::from_le_bytes(self.array()?))),
                2 => Value::Int(i64::from(u16::from_le_bytes(self.array()?))),
                3 => Value::Int(i64::from(i16::from_le_bytes(self.array()?))),
                4 => Value::Int(i64::from(self.u32()?)),
                5 => Value::Int(i64::from(i32::from_le_bytes(self.array()?))),
                6 => {
                    self.take(4)?;
                    Value::Other
                }
                7 => Value::Bool(self.array::<1>()?[0] != 0),
                8 => Value::Str(self.string()?),
                9 => {
                    let ty = self.u32()?;
                    let n = self.len()?;
                    let mut items = Vec::with_capacity(n.min(1 << 20));
                    for _ in 0..n {
                        items.push(self.value(ty)?);
                    }
                    Value::Array(items)
                }
                10 => Value::Int(i64::try_from(self.u64()?).map_err(|e| e.to_string())?),
                11 => Value::Int(i64::from_le_bytes(self.array()?)),
                12 => {
                    self.take(8)?;
                    Value::Other
                }
                other => return Err(format!("unknown value type {other}")),
            })
        }
    }

    /// The metadata of GGUF file `bytes`.
    pub fn metadata(bytes: &[u8]) -> Result<HashMap<String, Value>, String> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4)? != b"GGUF" {
            return Err("not a GGUF file".into());
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version}"));
        }
        let _tensors = c.u64()?;
        let entries = c.u64()?;
        let mut meta = HashMap::new();
        for _ in 0..entries {
            let key = c.string()?;
            let ty = c.u32()?;
            meta.insert(key, c.value(ty)?);
        }
        Ok(meta)
    }
}

#[test]
fn gguf_reader_reads_a_header() {
    let mut file = b"GGUF".to_vec();
    file.extend(3u32.to_le_bytes());
    file.extend(0u64.to_le_bytes());
    file.extend(2u64.to_le_bytes());
    let key = |file: &mut Vec<u8>, k: &str| {
        file.extend((k.len() as u64).to_le_bytes());
        file.extend(k.as_bytes());
    };
    key(&mut file, "tokenizer.ggml.tokens");
    file.extend(9u32.to_le_bytes());
    file.extend(8u32.to_le_bytes());
    file.extend(2u64.to_le_bytes());
    for t in ["a", "bc"] {
        key(&mut file, t);
    }
    key(&mut file, "tokenizer.ggml.bos_token_id");
    file.extend(4u32.to_le_bytes());
    file.extend(7u32.to_le_bytes());
    let meta: HashMap<String, gguf::Value> = gguf::metadata(&file).expect("header");
    assert!(matches!(
        meta.get("tokenizer.ggml.tokens"),
        Some(gguf::Value::Array(items)) if items.len() == 2
    ));
    assert!(matches!(
        meta.get("tokenizer.ggml.bos_token_id"),
        Some(gguf::Value::Int(7))
    ));
    assert!(gguf::metadata(&file[..file.len() - 1]).is_err());
}
