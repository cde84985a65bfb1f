//! blockdiff: a portable WebGPU runtime for block diffusion language models.

pub mod error;
pub mod gpu;
pub mod kernels;

pub use error::{Error, Result};
