//! Shared helpers for the GPU tests.
#![allow(dead_code, unused_imports)]

use blockdiff::gpu::{Gpu, GpuOptions};
use std::sync::{Arc, OnceLock};

/// The test GPU. In CI a missing adapter fails loudly; elsewhere the test is skipped with a reason.
pub fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    let g = GPU.get_or_init(|| Gpu::new_blocking(GpuOptions::default()).map_err(|e| e.to_string()));
    match g {
        Ok(g) => Some(g.clone()),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI needs a GPU adapter (lavapipe): {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

pub use blockdiff::model::synthetic::rand_vec;

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn read(gpu: &Gpu, buf: &blockdiff::gpu::GpuBuffer, len: usize) -> Vec<f32> {
    gpu.read_f32_blocking(buf, 0, len).expect("read back")
}

pub use blockdiff::model::synthetic::random_bd3lm;
