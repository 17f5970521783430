//! The element types a tensor can hold: a leaf every other module may import.

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE-754 binary32.
    F32,
    /// Two's-complement 32-bit integer.
    I32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        4
    }

    /// The name used in error messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}
