//! Model math: hyperparameters, tensor names, the memory plan, and the forward pass
//! assembled from shared blocks (attention: gqa, mla; feed-forward: ffn, moe).

pub(crate) mod config;
pub(crate) mod decoder;
pub(crate) mod embed;
pub(crate) mod ffn;
pub(crate) mod gqa;
pub(crate) mod load;
pub(crate) mod loader;
pub(crate) mod mla;
pub(crate) mod moe;
pub(crate) mod names;
pub(crate) mod plan;
pub(crate) mod scratch;
