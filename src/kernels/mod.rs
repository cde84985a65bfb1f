//! One Rust wrapper per WGSL shader in `shaders/`, each next to its plain-Rust twin (`cpu`),
//! which is the reference the GPU tests compare against and the building block of the CPU
//! reference forward.

pub mod attention;
pub mod elementwise;
pub mod embed;
pub mod kv_store;
pub mod logprob;
pub mod matmul;
pub mod norm;
pub mod rng;
pub mod rope;
pub mod sample;
pub mod select;
pub mod topk;

use crate::gpu::KernelSource;

/// Every shader with a representative set of defines for each specialisation, for validation.
pub fn all_specialisations() -> Vec<(&'static KernelSource, String)> {
    let mut v = Vec::new();
    for dtype in crate::gpu::DType::ALL {
        for (tiled, wg_y) in [(false, 1), (false, 4), (false, 8), (true, 8)] {
            for act in [matmul::Activation::None, matmul::Activation::GeluTanh, matmul::Activation::Silu] {
                for epi in [0u32, 1, 2] {
                    v.push((&matmul::SOURCE, matmul::defines(dtype, tiled, wg_y, true, act, epi)));
                }
            }
        }
        v.push((&embed::SOURCE, embed::defines(dtype)));
    }
    for rms in [false, true] {
        for modulate in [false, true] {
            v.push((&norm::SOURCE, norm::defines(rms, modulate)));
        }
    }
    v.push((&rope::SOURCE, String::new()));
    for op in [elementwise::Op::Gelu, elementwise::Op::GatedAdd, elementwise::Op::Add, elementwise::Op::SiluMul] {
        v.push((&elementwise::SOURCE, elementwise::defines(op)));
    }
    for (d, qt, kc) in [(16, 16, 32), (24, 16, 16), (64, 16, 16), (128, 8, 8), (2, 1, 1)] {
        v.push((&attention::SOURCE, attention::defines(d, qt, kc)));
    }
    v.push((&kv_store::SOURCE, String::new()));
    for subgroups in [false, true] {
        v.push((&sample::SOURCE, sample::defines(subgroups).to_string()));
    }
    v.push((&select::SOURCE, String::new()));
    v.push((&topk::SOURCE, String::new()));
    v.push((&logprob::SOURCE, String::new()));
    v
}

/// Number of 64-wide workgroups for `n` invocations, as a grid.
pub(crate) fn groups64(n: usize) -> [u32; 3] {
    crate::gpu::grid((n as u32).div_ceil(64))
}
