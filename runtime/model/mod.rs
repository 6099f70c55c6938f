//! Model math: hyperparameters, tensor names, the memory plan, and the forward pass
//! assembled from shared blocks (attention: gqa, mla; feed-forward: ffn, moe).

pub mod config;
pub mod decoder;
pub(crate) mod embed;
pub(crate) mod ffn;
pub(crate) mod gqa;
pub(crate) mod load;
pub(crate) mod loader;
pub(crate) mod mla;
pub mod moe;
pub mod names;
pub mod plan;
pub(crate) mod scratch;
