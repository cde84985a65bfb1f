//! LayerNorm (no bias) or RMSNorm with optional adaLN modulation:
//! `y = norm(x) * weight * (1 + scale) + shift`.

use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "norm",
    wgsl: include_str!("../../shaders/norm.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    d: u32,
    x_stride: u32,
    x_offset: u32,
    y_stride: u32,
    y_offset: u32,
    eps: f32,
    _pad: u32,
}

pub fn defines(rms: bool, modulate: bool) -> String {
    format!("const RMS: bool = {rms};\nconst MODULATE: bool = {modulate};")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    LayerNorm,
    RmsNorm,
}

pub struct Norm<'a> {
    pub kind: Kind,
    pub x: &'a GpuBuffer,
    pub x_offset: usize,
    pub x_stride: usize,
    pub rows: usize,
    pub d: usize,
    pub weight: &'a GpuBuffer,
    /// adaLN `(shift, scale)` vectors of length `d`.
    pub modulation: Option<(&'a GpuBuffer, &'a GpuBuffer)>,
    pub eps: f32,
    pub y: &'a GpuBuffer,
    pub y_offset: usize,
    pub y_stride: usize,
}

impl Norm<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let params = Params {
            rows: self.rows as u32,
            d: self.d as u32,
            x_stride: self.x_stride as u32,
            x_offset: self.x_offset as u32,
            y_stride: self.y_stride as u32,
            y_offset: self.y_offset as u32,
            eps: self.eps,
            _pad: 0,
        };
        let dummy = rec.gpu().dummy().clone();
        let (shift, scale) = self.modulation.map_or((&dummy, &dummy), |(sh, sc)| (sh.raw(), sc.raw()));
        rec.dispatch(
            &SOURCE,
            &defines(self.kind == Kind::RmsNorm, self.modulation.is_some()),
            bytemuck::bytes_of(&params),
            &[self.x.raw(), self.weight.raw(), shift, scale, self.y.raw()],
            crate::gpu::grid(self.rows as u32),
        )
    }
}

/// CPU twin over `rows` contiguous rows of width `d`.
pub fn cpu(
    kind: Kind,
    x: &[f32],
    d: usize,
    weight: &[f32],
    modulation: Option<(&[f32], &[f32])>,
    eps: f32,
) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (xr, yr) in x.chunks(d).zip(y.chunks_mut(d)) {
        let n = d as f64;
        let mean = match kind {
            Kind::LayerNorm => xr.iter().map(|&v| v as f64).sum::<f64>() / n,
            Kind::RmsNorm => 0.0,
        };
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for i in 0..d {
            let mut v = ((xr[i] as f64 - mean) * inv) as f32 * weight[i];
            if let Some((shift, scale)) = modulation {
                v = v * (1.0 + scale[i]) + shift[i];
            }
            yr[i] = v;
        }
    }
    y
}
