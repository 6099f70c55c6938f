//! Everything that touches wgpu. Nothing outside this folder imports wgpu.

pub mod buffers;
pub mod context;
pub mod graph;
pub mod kernels;
pub mod pipelines;
pub mod profile;

#[cfg(test)]
mod kernel_tests;
