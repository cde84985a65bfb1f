//! `Y = X W^T (+ bias)` with an optional activation and residual epilogue.

use crate::error::Result;
use crate::gpu::{BindKind, DType, GpuBuffer, GpuMatrix, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "matmul",
    wgsl: include_str!("../../shaders/matmul.wgsl"),
    bindings: &[
        BindKind::Uniform,
        BindKind::Read,
        BindKind::Read,
        BindKind::Read,
        BindKind::Read,
        BindKind::Read,
        BindKind::ReadWrite,
    ],
    per_step_params: false,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    GeluTanh,
    Silu,
}

/// What happens to the product before it lands in `y`.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// `y = v`
    Store,
    /// `y = y + gate[col] * v` (the adaLN-gated residual)
    GatedAdd(&'a GpuBuffer),
    /// `y = y + v`
    Add,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    n0: u32,
    x_stride: u32,
    x_offset: u32,
    y_stride: u32,
    y_offset: u32,
}

/// Thread rows per workgroup for `m` rows: the workgroup-memory path needs 8; the register path
/// shrinks to the rows there are (a 16-token block step uses 4, one token 1).
pub fn wg_rows(m: usize, tiled: bool) -> u32 {
    if tiled {
        return 8;
    }
    match m {
        0..=4 => 1,
        5..=8 => 2,
        9..=16 => 4,
        _ => 8,
    }
}

pub fn defines(dtype: DType, tiled: bool, wg_y: u32, bias: bool, act: Activation, epi: u32) -> String {
    let act = match act {
        Activation::None => 0,
        Activation::GeluTanh => 1,
        Activation::Silu => 2,
    };
    format!(
        "{}\nconst TILED: bool = {tiled};\nconst WG_Y: u32 = {wg_y}u;\nconst HAS_BIAS: bool = {bias};\nconst ACT: u32 = {act}u;\nconst EPI: u32 = {epi}u;",
        dtype.wgsl_weights()
    )
}

/// One matmul: `m` rows of `x` (row stride `x_stride`, starting at element `x_offset`) times the
/// weight matrix `w` `[n, k]`, written to `y` (row stride `y_stride`, from `y_offset`).
pub struct Matmul<'a> {
    pub x: &'a GpuBuffer,
    pub x_offset: usize,
    pub x_stride: usize,
    pub m: usize,
    pub w: &'a GpuMatrix,
    pub bias: Option<&'a GpuBuffer>,
    pub act: Activation,
    pub epi: Epilogue<'a>,
    pub y: &'a GpuBuffer,
    pub y_offset: usize,
    pub y_stride: usize,
}

impl Matmul<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let tiled = rec.gpu().prefers_tiled();
        let (epi, gate) = match self.epi {
            Epilogue::Store => (0, None),
            Epilogue::GatedAdd(g) => (1, Some(g)),
            Epilogue::Add => (2, None),
        };
        let wg_y = match rec.gpu().matmul_rows() {
            Some(r) if !tiled => r,
            _ => wg_rows(self.m, tiled),
        };
        let defs = defines(self.w.dtype, tiled, wg_y, self.bias.is_some(), self.act, epi);
        let dummy = rec.gpu().dummy().clone();
        for chunk in &self.w.chunks {
            let params = Params {
                m: self.m as u32,
                n: chunk.rows,
                k: self.w.cols as u32,
                n0: chunk.row0,
                x_stride: self.x_stride as u32,
                x_offset: self.x_offset as u32,
                y_stride: self.y_stride as u32,
                y_offset: self.y_offset as u32,
            };
            let groups = [chunk.rows.div_ceil(64), (self.m as u32).div_ceil(4 * wg_y), 1];
            rec.dispatch(
                &SOURCE,
                &defs,
                bytemuck::bytes_of(&params),
                &[
                    self.x.raw(),
                    chunk.buf.raw(),
                    chunk.meta.as_ref().map_or(&dummy, |m| m.raw()),
                    self.bias.map_or(&dummy, |b| b.raw()),
                    gate.map_or(&dummy, |g| g.raw()),
                    self.y.raw(),
                ],
                groups,
            )?;
        }
        Ok(())
    }
}

/// CPU twin. `w` is `[n, k]`; `gate` is used by the gated epilogue.
#[allow(clippy::too_many_arguments)]
pub fn cpu(
    x: &[f32],
    x_stride: usize,
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
    act: Activation,
    epi: u32,
    gate: Option<&[f32]>,
    y: &mut [f32],
    y_stride: usize,
) {
    for r in 0..m {
        let xr = &x[r * x_stride..r * x_stride + k];
        for c in 0..n {
            let wr = &w[c * k..(c + 1) * k];
            let mut v: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
            if let Some(b) = bias {
                v += b[c];
            }
            v = match act {
                Activation::None => v,
                Activation::GeluTanh => super::elementwise::gelu_tanh(v),
                Activation::Silu => super::elementwise::silu(v),
            };
            let out = &mut y[r * y_stride + c];
            *out = match epi {
                0 => v,
                1 => *out + gate.map_or(1.0, |g| g[c]) * v,
                _ => *out + v,
            };
        }
    }
}
