//! On-flash formats, read through memmap2 without copying tensor data to the heap.

pub mod gguf;
pub mod quant;
