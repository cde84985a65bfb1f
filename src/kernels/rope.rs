//! Rotary position embedding (rotate-half). The `(cos, sin)` table is computed on the host in f64
//! and shared with the attention kernel, which rotates cached pre-RoPE keys on the fly.

use crate::error::Result;
use crate::gpu::{BindKind, Gpu, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "rope",
    wgsl: include_str!("../../shaders/rope.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::ReadWrite],
    per_step_params: true,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    stride: u32,
    offset: u32,
    pos0: u32,
    _pad: [u32; 2],
}

/// `(cos, sin)` pairs for positions `0..positions`, `head_dim / 2` per position.
pub fn table(head_dim: usize, theta: f64, positions: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut t = Vec::with_capacity(positions * half * 2);
    for pos in 0..positions {
        for i in 0..half {
            // Same inverse frequency as the reference (computed in f32 there).
            let inv_freq = (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32;
            let angle = pos as f64 * inv_freq as f64;
            t.push(angle.cos() as f32);
            t.push(angle.sin() as f32);
        }
    }
    t
}

/// The table on the GPU, grown on demand (never in a hot loop: capacity is set at load).
pub struct RopeTable {
    pub head_dim: usize,
    pub theta: f64,
    pub positions: usize,
    pub buf: GpuBuffer,
    pub host: Vec<f32>,
}

impl RopeTable {
    pub fn new(gpu: &Gpu, head_dim: usize, theta: f64, positions: usize) -> Result<Self> {
        let host = table(head_dim, theta, positions.max(1));
        let buf = gpu.upload_f32("rope table", &host)?;
        Ok(RopeTable { head_dim, theta, positions: positions.max(1), buf, host })
    }

    /// Makes sure positions `0..positions` are covered.
    pub fn ensure(&mut self, gpu: &Gpu, positions: usize) -> Result<()> {
        if positions > self.positions {
            *self = RopeTable::new(gpu, self.head_dim, self.theta, positions.next_power_of_two())?;
        }
        Ok(())
    }
}

pub struct Rope<'a> {
    pub table: &'a RopeTable,
    pub x: &'a GpuBuffer,
    pub rows: usize,
    pub heads: usize,
    pub stride: usize,
    pub offset: usize,
    pub pos0: usize,
}

impl Rope<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let params = Params {
            rows: self.rows as u32,
            heads: self.heads as u32,
            head_dim: self.table.head_dim as u32,
            stride: self.stride as u32,
            offset: self.offset as u32,
            pos0: self.pos0 as u32,
            _pad: [0; 2],
        };
        let n = self.rows * self.heads * self.table.head_dim / 2;
        rec.dispatch(
            &SOURCE,
            "",
            bytemuck::bytes_of(&params),
            &[self.table.buf.raw(), self.x.raw()],
            super::groups64(n),
        )
    }
}

/// CPU twin: rotates `heads` heads of one row in place at `pos`.
pub fn cpu_row(table: &[f32], head_dim: usize, x: &mut [f32], heads: usize, pos: usize) {
    let half = head_dim / 2;
    for h in 0..heads {
        let b = h * head_dim;
        for i in 0..half {
            let (c, s) = (table[(pos * half + i) * 2], table[(pos * half + i) * 2 + 1]);
            let (a, o) = (x[b + i], x[b + i + half]);
            x[b + i] = a * c - o * s;
            x[b + i + half] = o * c + a * s;
        }
    }
}
