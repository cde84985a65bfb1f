//! blockdiff: a portable WebGPU runtime for block diffusion language models.
//!
//! Rooms: [`gpu`] (device, buffers, pipelines), [`kernels`] (one wrapper per WGSL shader, each
//! with a CPU twin), [`model`] (configs, checkpoints, forward passes), [`cache`] (KV cache).

pub mod cache;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod verify;

pub use error::{Error, Result};
