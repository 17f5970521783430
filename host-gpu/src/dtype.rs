//! The element types a tensor can hold: a leaf every other module may import.

/// Element type of a tensor.
///
/// Besides f32 and i32, a tensor may hold f32 values **kept as GGML
/// blocks** ([`DType::Q4_0`], [`DType::Q4_1`], [`DType::Q8_0`]): 32 values
/// per block, 4.5, 5 or 8.5 bits each. Its values are the f32s the blocks
/// decode to (SEMANTICS.md, "Input decoding"), but only two ops read it:
/// `matmul`/`linear` as the transposed `b` (a model's `[out, in]` weight)
/// and `gather` as the table (an embedding). Each gives, bit for bit, what
/// it gives with the decoded f32 tensor; the blocks are never expanded in
/// device memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE-754 binary32.
    F32,
    /// Two's-complement 32-bit integer.
    I32,
    /// f32 values kept as GGML Q4_0 blocks (18 bytes per 32 values).
    Q4_0,
    /// f32 values kept as GGML Q4_1 blocks (20 bytes per 32 values).
    Q4_1,
    /// f32 values kept as GGML Q8_0 blocks (34 bytes per 32 values).
    Q8_0,
}

impl DType {
    /// Values per block and bytes per block: `(1, 4)` for f32 and i32.
    pub fn block(self) -> (usize, usize) {
        match self {
            DType::F32 | DType::I32 => (1, 4),
            DType::Q4_0 => (32, 18),
            DType::Q4_1 => (32, 20),
            DType::Q8_0 => (32, 34),
        }
    }

    /// Whether the values are kept as blocks (only a tensor whose last
    /// dimension is whole blocks can be).
    pub fn is_blocks(self) -> bool {
        self.block().0 > 1
    }

    /// Bytes that `numel` values take (`None` if that overflows or is not
    /// whole blocks).
    pub fn byte_len(self, numel: u64) -> Option<u64> {
        let (values, bytes) = self.block();
        if !numel.is_multiple_of(values as u64) {
            return None;
        }
        (numel / values as u64).checked_mul(bytes as u64)
    }

    /// The name used in error messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::Q4_0 => "q4_0 blocks",
            DType::Q4_1 => "q4_1 blocks",
            DType::Q8_0 => "q8_0 blocks",
        }
    }
}
