//! blockdiff: a portable WebGPU runtime for block diffusion language models.
//!
//! Rooms: [`gpu`] (device, buffers, pipelines), [`kernels`] (one wrapper per WGSL shader, each
//! with a CPU twin), [`model`] (configs, checkpoints, forward passes), [`cache`] (KV cache),
//! [`sample`] (the block diffusion loop and its unmasking strategies), [`session`] (the API the
//! CLI, desktop and browser share), [`quant`] (block-wise q8/q4 weight formats).

pub mod cache;
pub mod chat;
pub mod clock;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod sample;
pub mod session;
pub mod tokenizer;
pub mod verify;
#[cfg(feature = "web")]
pub mod web;

pub use error::{Error, Result};
pub use sample::{Event, GenerateOptions, Generation, StopReason, Strategy};
pub use session::{ProbeRow, Score, ScoreOptions, Session};
