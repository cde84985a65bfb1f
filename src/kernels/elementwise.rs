//! Element-wise ops: GELU (tanh), gated residual, residual, SwiGLU.

use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "elementwise",
    wgsl: include_str!("../../shaders/elementwise.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `y = gelu_tanh(a)`
    Gelu,
    /// `y = y + gate[col] * a`
    GatedAdd,
    /// `y = y + a`
    Add,
    /// `y = silu(a) * b`
    SiluMul,
}

pub fn defines(op: Op) -> String {
    let code = match op {
        Op::Gelu => 0,
        Op::GatedAdd => 1,
        Op::Add => 2,
        Op::SiluMul => 3,
    };
    format!("const OP: u32 = {code}u;")
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    a_stride: u32,
    a_offset: u32,
    b_stride: u32,
    b_offset: u32,
    y_stride: u32,
    y_offset: u32,
}

/// A strided `[rows, cols]` view of a buffer.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub buf: &'a GpuBuffer,
    pub offset: usize,
    pub stride: usize,
}

pub struct Elementwise<'a> {
    pub op: Op,
    pub rows: usize,
    pub cols: usize,
    pub a: View<'a>,
    pub b: Option<View<'a>>,
    pub gate: Option<&'a GpuBuffer>,
    pub y: View<'a>,
}

impl Elementwise<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let dummy = rec.gpu().dummy().clone();
        let params = Params {
            rows: self.rows as u32,
            cols: self.cols as u32,
            a_stride: self.a.stride as u32,
            a_offset: self.a.offset as u32,
            b_stride: self.b.map_or(0, |b| b.stride as u32),
            b_offset: self.b.map_or(0, |b| b.offset as u32),
            y_stride: self.y.stride as u32,
            y_offset: self.y.offset as u32,
        };
        rec.dispatch(
            &SOURCE,
            &defines(self.op),
            bytemuck::bytes_of(&params),
            &[
                self.a.buf.raw(),
                self.b.map_or(&dummy, |b| b.buf.raw()),
                self.gate.map_or(&dummy, |g| g.raw()),
                self.y.buf.raw(),
            ],
            super::groups64(self.rows * self.cols),
        )
    }
}

pub fn gelu_tanh(v: f32) -> f32 {
    let u = 0.797_884_6_f32 * (v + 0.044715 * v * v * v);
    0.5 * v * (1.0 + u.clamp(-15.0, 15.0).tanh())
}

pub fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// CPU twin over contiguous data; `gate` has length `cols`.
pub fn cpu(op: Op, cols: usize, a: &[f32], b: Option<&[f32]>, gate: Option<&[f32]>, y: &mut [f32]) {
    for i in 0..y.len() {
        y[i] = match op {
            Op::Gelu => gelu_tanh(a[i]),
            Op::GatedAdd => y[i] + gate.map_or(1.0, |g| g[i % cols]) * a[i],
            Op::Add => y[i] + a[i],
            Op::SiluMul => silu(a[i]) * b.map_or(1.0, |b| b[i]),
        };
    }
}
