//! On-flash formats, read through memmap2 without copying tensor data to the heap.

pub(crate) mod gguf;
pub(crate) mod quant;
pub(crate) mod split;
