//! Per-row top-k probabilities and entropy (the probe), `[MASK]` excluded.

use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "topk",
    wgsl: include_str!("../../shaders/topk.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,
    k: u32,
    _pad: [u32; 3],
}

/// One row's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    pub tokens: Vec<u32>,
    pub probs: Vec<f32>,
    pub entropy: f32,
    pub log_z: f32,
}

pub struct TopKRows<'a> {
    pub logits: &'a GpuBuffer,
    pub rows: usize,
    pub vocab: usize,
    pub stride: usize,
    pub mask_id: u32,
    pub k: usize,
    /// `rows * (2k + 2)` words.
    pub out: &'a GpuBuffer,
}

impl TopKRows<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let params = Params {
            rows: self.rows as u32,
            vocab: self.vocab as u32,
            stride: self.stride as u32,
            mask_id: self.mask_id,
            k: self.k as u32,
            _pad: [0; 3],
        };
        rec.dispatch(
            &SOURCE,
            "",
            bytemuck::bytes_of(&params),
            &[self.logits.raw(), self.out.raw()],
            [self.rows as u32, 1, 1],
        )
    }
}

/// Decodes the kernel's output words.
pub fn decode(words: &[f32], rows: usize, k: usize) -> Vec<TopK> {
    (0..rows)
        .map(|r| {
            let w = &words[r * (2 * k + 2)..(r + 1) * (2 * k + 2)];
            TopK {
                tokens: (0..k).map(|i| w[2 * i].to_bits()).collect(),
                probs: (0..k).map(|i| w[2 * i + 1]).collect(),
                entropy: w[2 * k],
                log_z: w[2 * k + 1],
            }
        })
        .collect()
}

/// CPU twin for one row.
pub fn cpu_row(logits: &[f32], mask_id: u32, k: usize) -> TopK {
    let mut idx: Vec<usize> = (0..logits.len()).filter(|&v| v as u32 != mask_id).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mx = logits[idx[0]];
    let z: f64 = idx.iter().map(|&v| ((logits[v] - mx) as f64).exp()).sum();
    let s1: f64 = idx
        .iter()
        .map(|&v| {
            let d = (logits[v] - mx) as f64;
            d.exp() * d
        })
        .sum();
    TopK {
        tokens: idx[..k].iter().map(|&v| v as u32).collect(),
        probs: idx[..k].iter().map(|&v| (((logits[v] - mx) as f64).exp() / z) as f32).collect(),
        entropy: (z.ln() - s1 / z).max(0.0) as f32,
        log_z: mx + z.ln() as f32,
    }
}
