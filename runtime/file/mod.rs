//! On-flash formats, read through memmap2 without copying tensor data to the heap.

pub(crate) mod gguf;
mod iq;
mod iq_grids;
pub(crate) mod quant;
pub(crate) mod split;
// Random valid blocks: for the tests, and for the kernel bench's matrices.
mod test_blocks;
