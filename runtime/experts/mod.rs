//! Mixture-of-experts weights streamed from flash: where each expert's bytes are in the
//! file ([`store`]) and the bounded GPU cache they are brought into ([`cache`]).

pub mod cache;
pub mod store;
