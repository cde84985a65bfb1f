//! Per-row cross-entropy with `[MASK]` excluded from the softmax (the SUBS parameterisation).

use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "logprob",
    wgsl: include_str!("../../shaders/logprob.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,
    target_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

pub struct CrossEntropy<'a> {
    pub logits: &'a GpuBuffer,
    pub rows: usize,
    pub vocab: usize,
    pub stride: usize,
    pub mask_id: u32,
    pub targets: &'a GpuBuffer,
    pub target_offset: usize,
    pub out: &'a GpuBuffer,
    pub out_offset: usize,
}

impl CrossEntropy<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let params = Params {
            rows: self.rows as u32,
            vocab: self.vocab as u32,
            stride: self.stride as u32,
            mask_id: self.mask_id,
            target_offset: self.target_offset as u32,
            out_offset: self.out_offset as u32,
            _pad: [0; 2],
        };
        rec.dispatch(
            &SOURCE,
            "",
            bytemuck::bytes_of(&params),
            &[self.logits.raw(), self.targets.raw(), self.out.raw()],
            [self.rows as u32, 1, 1],
        )
    }
}

/// CPU twin for one row.
pub fn cpu_row(logits: &[f32], mask_id: u32, target: u32) -> f32 {
    let mx =
        logits.iter().enumerate().filter(|(v, _)| *v as u32 != mask_id).fold(f32::NEG_INFINITY, |a, (_, &b)| a.max(b));
    let z: f64 =
        logits.iter().enumerate().filter(|(v, _)| *v as u32 != mask_id).map(|(_, &l)| ((l - mx) as f64).exp()).sum();
    (mx as f64 + z.ln() - logits[target as usize] as f64) as f32
}
