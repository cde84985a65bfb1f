//! Writes a block's keys and values into KV-cache ring slots.

use super::elementwise::View;
use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "kv_store",
    wgsl: include_str!("../../shaders/kv_store.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::ReadWrite, BindKind::ReadWrite],
    per_step_params: true,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    width: u32,
    k_stride: u32,
    k_offset: u32,
    v_stride: u32,
    v_offset: u32,
    dst_start: u32,
    cap: u32,
}

pub struct KvStore<'a> {
    pub k: View<'a>,
    pub v: View<'a>,
    pub rows: usize,
    pub width: usize,
    pub k_cache: &'a GpuBuffer,
    pub v_cache: &'a GpuBuffer,
    /// Ring slot (before the modulo) of the first row.
    pub dst_start: usize,
    pub cap: usize,
}

impl KvStore<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let params = Params {
            rows: self.rows as u32,
            width: self.width as u32,
            k_stride: self.k.stride as u32,
            k_offset: self.k.offset as u32,
            v_stride: self.v.stride as u32,
            v_offset: self.v.offset as u32,
            dst_start: self.dst_start as u32,
            cap: self.cap as u32,
        };
        rec.dispatch(
            &SOURCE,
            "",
            bytemuck::bytes_of(&params),
            &[self.k.buf.raw(), self.v.buf.raw(), self.k_cache.raw(), self.v_cache.raw()],
            super::groups64(self.rows * self.width),
        )
    }
}

/// CPU twin: copies `rows` rows of `width` into ring slots of `cache` (`cap` rows).
pub fn cpu(src: &[f32], width: usize, cache: &mut [f32], dst_start: usize, cap: usize) {
    for (r, row) in src.chunks(width).enumerate() {
        let slot = (dst_start + r) % cap;
        cache[slot * width..(slot + 1) * width].copy_from_slice(row);
    }
}
