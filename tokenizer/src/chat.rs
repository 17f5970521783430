//! Chat prompts from a model's chat template (a GGUF file's
//! `tokenizer.chat_template`), for the ChatML family: recognised by the
//! template's text, rendered by code (see [`ChatTemplate`]; this is not a
//! Jinja engine).
//!
//! Recognising: the template is lexed as jinja2 lexes it, the text between
//! tags must be whitespace that jinja2 trims (`{%-`, `-%}`, `trim_blocks`,
//! `lstrip_blocks`: transformers' settings), and the tags, in a canonical
//! form (`x['y']` as `x.y`, `~` as `+`, adjacent outputs joined, string
//! literals joined), must equal a known form's, with any string in the
//! place of a default system message.

use crate::{Error, Result};

/// transformers' ChatML template.
const CHATML: &str = r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// ChatML with a default system message (SmolLM2's and Qwen2's form); the
/// message is the hole [`HOLE`].
const CHATML_DEFAULT_SYSTEM: &str = r"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ __default_system__ }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The name standing for the default system message in a pattern.
const HOLE: &str = "__default_system__";

/// How many characters of an unsupported template an error quotes.
const QUOTED_CHARS: usize = 60;

/// A piece of a rendered chat prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatPiece<'a> {
    /// The template's own text (`<|im_start|>`, `\n`, a default system
    /// message): control tokens written in it are tokens.
    Template(String),
    /// A message's role or content: text, whatever it holds.
    Content(&'a str),
}

impl ChatPiece<'_> {
    /// The piece's text.
    pub fn text(&self) -> &str {
        match self {
            ChatPiece::Template(text) => text,
            ChatPiece::Content(text) => text,
        }
    }
}

/// A chat template recognised as one of the ChatML forms.
///
/// This is not a Jinja engine. [`ChatTemplate::new`] recognises a template
/// by its text as one of the forms below, and then renders what that
/// template renders, byte for byte, as transformers' `apply_chat_template`
/// (jinja2 with `trim_blocks` and `lstrip_blocks`) does; any other template
/// is refused. The crate's tests compare its output with jinja2's for the
/// real SmolLM2 template and four others.
///
/// The forms: each message `<|im_start|>{role}\n{content}<|im_end|>\n`,
/// then `<|im_start|>assistant\n` if a generation prompt is asked for;
///
/// - transformers' ChatML template;
/// - the same with a default system message written before the first
///   message when that is not a system message (SmolLM2's "You are a
///   helpful AI assistant named SmolLM, trained by Hugging Face", Qwen2's
///   "You are a helpful assistant"): any text in that place.
///
/// The template is compared as tokens: spacing inside tags, quote style,
/// `x['y']` or `x.y`, string literals joined with `+` or `~`, output tags
/// split or merged, and whitespace between tags that jinja2 trims do not
/// matter; anything that changes the output does (a filter, a condition,
/// text between tags, another literal).
///
/// [`ChatTemplate::pieces`] keeps apart the template's own text, where
/// `<|im_start|>` is a control token, and the messages' roles and contents,
/// where it is only text: [`Bpe::encode_chat`](crate::Bpe::encode_chat)
/// encodes them so that a message cannot inject control tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// What the template writes before a first message that is not a
    /// system message (the whole `<|im_start|>system\n…<|im_end|>\n`).
    default_system: Option<String>,
}

impl ChatTemplate {
    /// Recognises `template` (the text of `tokenizer.chat_template`).
    ///
    /// # Errors
    /// [`Error::Unsupported`], quoting the template's first characters, if
    /// it is not one of the ChatML forms this crate renders.
    pub fn new(template: &str) -> Result<ChatTemplate> {
        let unsupported = |why: &str| {
            let start: String = template.chars().take(QUOTED_CHARS).collect();
            let more = if start.len() < template.len() {
                "…"
            } else {
                ""
            };
            Error::Unsupported(format!(
                "chat template {start:?}{more}: {why}; only ChatML templates are rendered \
                 (transformers' ChatML, or ChatML with a default system message as SmolLM2's \
                 and Qwen2's), as this crate is not a Jinja engine: use a model with a ChatML \
                 chat template"
            ))
        };
        let tags = normalize(template).map_err(|why| unsupported(&why))?;
        let pattern = |p: &str| normalize(p).map_err(|why| Error::Format(format!("{p}: {why}")));
        if tags == pattern(CHATML)? {
            return Ok(ChatTemplate {
                default_system: None,
            });
        }
        if let Some(system) = match_hole(&tags, &pattern(CHATML_DEFAULT_SYSTEM)?) {
            return Ok(ChatTemplate {
                default_system: Some(system),
            });
        }
        Err(unsupported("not a ChatML form"))
    }

    /// The prompt for `messages` (`(role, content)` pairs), as pieces of
    /// template text and message text; with the assistant's turn opened
    /// if `add_generation_prompt`.
    pub fn pieces<'a>(
        &self,
        messages: &[(&'a str, &'a str)],
        add_generation_prompt: bool,
    ) -> Vec<ChatPiece<'a>> {
        let mut pieces = Vec::with_capacity(messages.len() * 5 + 2);
        for (i, &(role, content)) in messages.iter().enumerate() {
            if i == 0
                && role != "system"
                && let Some(system) = &self.default_system
            {
                pieces.push(ChatPiece::Template(system.clone()));
            }
            pieces.push(ChatPiece::Template("<|im_start|>".into()));
            pieces.push(ChatPiece::Content(role));
            pieces.push(ChatPiece::Template("\n".into()));
            pieces.push(ChatPiece::Content(content));
            pieces.push(ChatPiece::Template("<|im_end|>\n".into()));
        }
        if add_generation_prompt {
            pieces.push(ChatPiece::Template("<|im_start|>assistant\n".into()));
        }
        pieces
    }

    /// The prompt for `messages` as text: what the template renders.
    pub fn render(&self, messages: &[(&str, &str)], add_generation_prompt: bool) -> String {
        self.pieces(messages, add_generation_prompt)
            .iter()
            .map(ChatPiece::text)
            .collect()
    }
}

/// The prompt `template` renders for `messages` (`(role, content)` pairs),
/// with the assistant's turn opened if `add_generation_prompt`. To encode a
/// prompt with user text in it, use [`ChatTemplate::pieces`] and
/// [`Bpe::encode_chat`](crate::Bpe::encode_chat): this text no longer tells
/// the template's control tokens from a message's.
///
/// # Errors
/// [`Error::Unsupported`] if `template` is not one of the ChatML forms
/// (see [`ChatTemplate::new`]).
pub fn render_chat(
    template: &str,
    messages: &[(&str, &str)],
    add_generation_prompt: bool,
) -> Result<String> {
    Ok(ChatTemplate::new(template)?.render(messages, add_generation_prompt))
}

/// A token inside a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Name(String),
    Str(String),
    Num(String),
    Op(String),
}

/// A `{{ … }}` (output) or `{% … %}` (block) tag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag {
    block: bool,
    /// `{{-` / `{%-`: strips the whitespace before.
    trim_before: bool,
    /// `-}}` / `-%}`: strips the whitespace after.
    trim_after: bool,
    toks: Vec<Tok>,
}

/// `template` as tags in a canonical form (see the module docs), or why it
/// cannot be compared: text outside tags that jinja2 would output, or
/// syntax this reader does not take.
fn normalize(template: &str) -> std::result::Result<Vec<(bool, Vec<Tok>)>, String> {
    let (texts, tags) = lex(template)?;
    for (i, text) in texts.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| tags.get(j));
        if !rendered_text(text, before, tags.get(i)).is_empty() {
            return Err(format!("it writes text between tags ({text:?})"));
        }
    }
    let mut out: Vec<(bool, Vec<Tok>)> = Vec::with_capacity(tags.len());
    for tag in tags {
        let toks = canonical(tag.toks);
        match out.last_mut() {
            // Adjacent outputs are one concatenation.
            Some((false, last)) if !tag.block => {
                last.push(Tok::Op("+".into()));
                last.extend(toks);
                *last = fold_strings(std::mem::take(last));
            }
            _ => out.push((tag.block, fold_strings(toks))),
        }
    }
    Ok(out)
}

/// The part of `text` jinja2 outputs between tag `before` and tag `after`
/// (or the template's start and end): `-` strips all whitespace on its
/// side; `trim_blocks` drops the newline right after a block tag;
/// `lstrip_blocks` drops spaces and tabs between a line's start and a
/// block tag.
fn rendered_text<'t>(text: &'t str, before: Option<&Tag>, after: Option<&Tag>) -> &'t str {
    let mut text = text;
    let mut line_start = before.is_none();
    if let Some(tag) = before {
        if tag.trim_after {
            text = text.trim_start();
        } else if tag.block
            && let Some(rest) = text.strip_prefix('\n')
        {
            text = rest;
            line_start = true;
        }
    }
    if let Some(tag) = after {
        if tag.trim_before {
            text = text.trim_end();
        } else if tag.block {
            let line = text.rfind('\n').map_or(0, |at| at + 1);
            if (line > 0 || line_start) && text[line..].chars().all(|c| c == ' ' || c == '\t') {
                text = &text[..line];
            }
        }
    }
    text
}

/// The template's texts between tags (one more than the tags) and tags.
type Lexed = (Vec<String>, Vec<Tag>);

/// Splits `template` into texts and tags, as jinja2's lexer: newlines made
/// `\n`, one trailing newline dropped.
fn lex(template: &str) -> std::result::Result<Lexed, String> {
    let source = template.replace("\r\n", "\n").replace('\r', "\n");
    let source = source.strip_suffix('\n').unwrap_or(&source);
    let mut texts = Vec::new();
    let mut tags = Vec::new();
    let mut rest = source;
    loop {
        let open = ["{{", "{%", "{#"].iter().filter_map(|o| rest.find(o)).min();
        let Some(at) = open else {
            texts.push(rest.to_owned());
            return Ok((texts, tags));
        };
        texts.push(rest[..at].to_owned());
        let block = match &rest[at..at + 2] {
            "{%" => true,
            "{{" => false,
            _ => return Err("it has a comment".into()),
        };
        let mut body = &rest[at + 2..];
        let trim_before = body.starts_with('-');
        if trim_before {
            body = &body[1..];
        } else if body.starts_with('+') {
            return Err("it uses `+` whitespace control".into());
        }
        let (toks, trim_after, after) = lex_tag(body, if block { "%}" } else { "}}" })?;
        tags.push(Tag {
            block,
            trim_before,
            trim_after,
            toks,
        });
        rest = after;
    }
}

/// The tokens of a tag's body up to `close`, whether it ends with `-`, and
/// the text after it.
fn lex_tag<'t>(
    body: &'t str,
    close: &str,
) -> std::result::Result<(Vec<Tok>, bool, &'t str), String> {
    let mut toks = Vec::new();
    let mut s = body;
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix(close) {
            return Ok((toks, false, after));
        }
        if let Some(after) = s.strip_prefix('-').and_then(|s| s.strip_prefix(close)) {
            return Ok((toks, true, after));
        }
        let Some(c) = s.chars().next() else {
            return Err(format!("a tag does not close with `{close}`"));
        };
        if c == '\'' || c == '"' {
            let (value, after) = string_literal(s, c)?;
            toks.push(Tok::Str(value));
            s = after;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            toks.push(Tok::Name(s[..end].to_owned()));
            s = &s[end..];
        } else if c.is_ascii_digit() {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            toks.push(Tok::Num(s[..end].to_owned()));
            s = &s[end..];
        } else {
            let len = ["==", "!=", "<=", ">=", "//", "**"]
                .iter()
                .find(|op| s.starts_with(*op))
                .map_or(c.len_utf8(), |op| op.len());
            let op = if &s[..len] == "~" { "+" } else { &s[..len] };
            toks.push(Tok::Op(op.to_owned()));
            s = &s[len..];
        }
    }
}

/// The value of the string literal at the start of `s` (quoted with
/// `quote`) and the text after it. Escapes: `\n`, `\t`, `\r`, `\\`, `\'`,
/// `\"`; jinja2 takes more (Python's), which this reader refuses.
fn string_literal(s: &str, quote: char) -> std::result::Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((value, &s[at + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(e @ ('\\' | '\'' | '"')) => value.push(e),
                Some(e) => return Err(format!("a string uses the escape `\\{e}`")),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("a string does not end".into())
}

/// `x['y']` as `x.y`.
fn canonical(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    for tok in toks {
        if let Tok::Op(close) = &tok
            && close == "]"
            && let [.., Tok::Op(open), Tok::Str(key)] = out.as_slice()
            && open == "["
            && is_identifier(key)
        {
            let key = Tok::Name(key.clone());
            out.truncate(out.len() - 2);
            out.push(Tok::Op(".".into()));
            out.push(key);
            continue;
        }
        out.push(tok);
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `'a' + 'b'` as `'ab'`. (Next to an operator that binds tighter the two
/// would not be joined in jinja2, but such a template matches no form
/// anyway: the operator stays.)
fn fold_strings(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    for tok in toks {
        if let Tok::Str(b) = &tok
            && let [.., Tok::Str(a), Tok::Op(plus)] = out.as_mut_slice()
            && plus == "+"
        {
            a.push_str(b);
            out.pop();
            continue;
        }
        out.push(tok);
    }
    out
}

/// Whether `tags` is `pattern` with a string in the place of the output
/// tag [`HOLE`]: that string.
fn match_hole(tags: &[(bool, Vec<Tok>)], pattern: &[(bool, Vec<Tok>)]) -> Option<String> {
    if tags.len() != pattern.len() {
        return None;
    }
    let mut hole = None;
    for (tag, want) in tags.iter().zip(pattern) {
        match (tag, want) {
            ((false, toks), (false, w)) if matches!(w.as_slice(), [Tok::Name(n)] if n == HOLE) => {
                match toks.as_slice() {
                    [Tok::Str(text)] => hole = Some(text.clone()),
                    _ => return None,
                }
            }
            (tag, want) if tag == want => {}
            _ => return None,
        }
    }
    hole
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    const SYSTEM: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";

    #[test]
    fn smollm2_inserts_its_system_message() {
        let t = ChatTemplate::new(SMOLLM2).expect("smollm2");
        assert_eq!(
            t.render(&[("user", "Hi")], true),
            format!("{SYSTEM}<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        );
        assert_eq!(
            t.render(&[("system", "S"), ("user", "Hi")], false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
        assert_eq!(t.render(&[], false), "");
        assert_eq!(t.render(&[], true), "<|im_start|>assistant\n");
    }

    #[test]
    fn pieces_keep_message_text_apart() {
        let t = ChatTemplate::new(CHATML).expect("chatml");
        let pieces = t.pieces(&[("user", "<|im_end|>")], false);
        assert_eq!(
            pieces,
            [
                ChatPiece::Template("<|im_start|>".into()),
                ChatPiece::Content("user"),
                ChatPiece::Template("\n".into()),
                ChatPiece::Content("<|im_end|>"),
                ChatPiece::Template("<|im_end|>\n".into()),
            ]
        );
    }

    #[test]
    fn equivalent_spellings_are_recognised() {
        let variants = [
            // Spacing, quotes, attributes, `~`, split outputs.
            r#"{% for message in messages %}{% if loop.first and messages[0].role != "system" %}{{ "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" }}{% endif %}{{ "<|im_start|>" ~ message.role ~ "\n" }}{{ message.content }}{{ "<|im_end|>\n" }}{% endfor %}{% if add_generation_prompt %}{{ "<|im_start|>assistant\n" }}{% endif %}"#,
            // Over lines, with whitespace that jinja2 trims.
            "{%- for message in messages %}\n  {%- if loop.first and messages[0]['role'] != 'system' %}\n    {{- '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}\n  {%- endif %}\n  {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n  {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n",
            // trim_blocks and lstrip_blocks alone.
            "{% for message in messages %}\n  {% if loop.first and messages[0]['role'] != 'system' %}\n{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}\n{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}\r\n{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ];
        let want = ChatTemplate::new(SMOLLM2).expect("smollm2");
        for v in variants {
            assert_eq!(ChatTemplate::new(v).expect(v), want, "{v}");
        }
    }

    #[test]
    fn other_templates_are_refused() {
        let refused = [
            // Text that jinja2 would output: the newline after `}}`.
            "{% for message in messages %}\n{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}\n{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
            // A filter.
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
            // Another generation prompt.
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n\\n' }}{% endif %}",
            // Llama 3's.
            "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}",
            // A comment, an unknown escape, an unclosed tag, an unclosed string.
            "{# ChatML #}{% for message in messages %}{% endfor %}",
            "{{ '\\x41' }}",
            "{% for message in messages %",
            "{{ 'abc }}",
            "",
            "Hello",
        ];
        for t in refused {
            match ChatTemplate::new(t) {
                Err(Error::Unsupported(m)) => {
                    assert!(m.starts_with("chat template \""), "{m}");
                    assert!(m.contains("not a Jinja engine"), "{m}");
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn lexer_reads_strings_and_operators() {
        let (texts, tags) = lex(r#"a{{- 'x\'y' + "q\"" ~ b[0] != 12 -}}b"#).expect("lex");
        assert_eq!(texts, ["a", "b"]);
        let tag = &tags[0];
        assert!(tag.trim_before && tag.trim_after && !tag.block);
        assert_eq!(
            tag.toks,
            [
                Tok::Str("x'y".into()),
                Tok::Op("+".into()),
                Tok::Str("q\"".into()),
                Tok::Op("+".into()),
                Tok::Name("b".into()),
                Tok::Op("[".into()),
                Tok::Num("0".into()),
                Tok::Op("]".into()),
                Tok::Op("!=".into()),
                Tok::Num("12".into()),
            ]
        );
    }
}
