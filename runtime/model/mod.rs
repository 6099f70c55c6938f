//! Model math: hyperparameters, tensor names, and the forward pass per architecture.

pub mod config;
pub mod decoder;
pub mod mla;
pub mod moe;
pub mod names;
pub mod stream;
