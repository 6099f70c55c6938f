//! Model math: hyperparameters, tensor names, and the forward pass per architecture.

pub mod config;
pub mod dense;
pub mod names;
