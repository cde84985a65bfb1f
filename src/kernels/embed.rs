//! Embedding gather: `out[t] = table[ids[t]]`, over a row-chunked table.

use crate::error::Result;
use crate::gpu::{BindKind, DType, GpuBuffer, GpuMatrix, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "embed",
    wgsl: include_str!("../../shaders/embed.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    d: u32,
    row0: u32,
    rows: u32,
    ids_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

pub fn defines(dtype: DType) -> String {
    dtype.wgsl_weights()
}

pub struct Embed<'a> {
    pub table: &'a GpuMatrix,
    pub ids: &'a GpuBuffer,
    pub ids_offset: usize,
    pub n: usize,
    pub out: &'a GpuBuffer,
    pub out_offset: usize,
}

impl Embed<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let d = self.table.cols;
        let dummy = rec.gpu().dummy().clone();
        for chunk in &self.table.chunks {
            let params = Params {
                n: self.n as u32,
                d: d as u32,
                row0: chunk.row0,
                rows: chunk.rows,
                ids_offset: self.ids_offset as u32,
                out_offset: self.out_offset as u32,
                _pad: [0; 2],
            };
            rec.dispatch(
                &SOURCE,
                &defines(self.table.dtype),
                bytemuck::bytes_of(&params),
                &[self.ids.raw(), chunk.buf.raw(), chunk.meta.as_ref().map_or(&dummy, |m| m.raw()), self.out.raw()],
                super::groups64(self.n * d),
            )?;
        }
        Ok(())
    }
}

/// CPU twin.
pub fn cpu(table: &[f32], d: usize, ids: &[u32]) -> Vec<f32> {
    ids.iter().flat_map(|&id| table[id as usize * d..(id as usize + 1) * d].iter().copied()).collect()
}
