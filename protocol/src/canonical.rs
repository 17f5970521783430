//! The canonical binary encoding used for every hash and signature.
//!
//! Integers are fixed-width little-endian; byte strings and text are a `u64`
//! little-endian length followed by the bytes; maps are a `u64` count then
//! their entries sorted by key; an option is a `0` or `1` byte then the value.
//! Every signed or hashed message starts with a domain tag (e.g.
//! `assay/receipt/v1`), so a signature over one kind of message can never be
//! replayed as another.

/// An append-only canonical encoder.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// A new encoder that starts with `domain` (length-prefixed).
    pub fn new(domain: &str) -> Encoder {
        let mut e = Encoder { buf: Vec::new() };
        e.str(domain);
        e
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a `u32` (LE).
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a `u64` (LE).
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends length-prefixed UTF-8 text.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Appends a fixed 32-byte value (no length prefix).
    pub fn fixed32(&mut self, v: &[u8; 32]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// blake3 of the encoded bytes.
    pub fn hash(&self) -> crate::Hash32 {
        crate::Hash32::of(&self.buf)
    }
}
