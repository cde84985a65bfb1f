//! Shared helpers for the GPU tests.
#![allow(dead_code)]

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

/// Deterministic pseudo-random f32s in [-scale, scale).
pub fn rand_vec(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn read(gpu: &Gpu, buf: &blockdiff::gpu::GpuBuffer, len: usize) -> Vec<f32> {
    gpu.read_f32_blocking(buf, 0, len).expect("read back")
}
