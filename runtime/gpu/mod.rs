//! Everything that touches wgpu. Nothing outside this folder names wgpu (but
//! `Model::load_on_device`, which takes the host's device): the rest of the runtime
//! builds ops here, records them into [`graph::Graph`]s and, at the pauses where the CPU
//! must act mid-step, works through an [`Encoder`].

pub(crate) mod buffers;
pub(crate) mod context;
pub(crate) mod graph;
pub(crate) mod kernels;
pub(crate) mod pipelines;
pub(crate) mod profile;
pub(crate) mod slabs;
pub(crate) mod stream;
pub(crate) mod tables;

pub use graph::Encoder;

/// A GPU buffer (every buffer the runtime makes is a storage, uniform or staging
/// buffer of wgpu).
pub type Buffer = wgpu::Buffer;
