//! Mixture-of-experts weights streamed from flash: where each expert's bytes are in the
//! file ([`store`]) and which experts hold the GPU's expert slots ([`cache`]). Neither
//! touches the GPU: the slots' memory is `gpu::slabs`, and `model::moe` moves bytes.

pub(crate) mod cache;
pub(crate) mod store;
