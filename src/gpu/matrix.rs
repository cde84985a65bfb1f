//! Weight matrices on the GPU, split into row chunks that each fit one storage binding
//! (the real BD3-LM output layer, 50258 x 768 f32, is 154 MB: above WebGPU's default 128 MiB).

use super::{Gpu, GpuBuffer};
use crate::error::{Error, Result};

/// Element type of weights on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }
    /// WGSL lines that make `WT` this type.
    pub fn wgsl_alias(self) -> &'static str {
        match self {
            DType::F32 => "alias WT = f32;",
            DType::F16 => "enable f16;\nalias WT = f16;",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
        })
    }
}

pub struct MatrixChunk {
    pub row0: u32,
    pub rows: u32,
    pub buf: GpuBuffer,
}

/// A row-major `[rows, cols]` matrix (PyTorch Linear layout `[out, in]`).
pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    pub dtype: DType,
    pub chunks: Vec<MatrixChunk>,
}

impl GpuMatrix {
    /// Uploads `data` (`rows * cols` f32 values) as `dtype`, chunked by rows.
    pub fn upload(gpu: &Gpu, name: &str, rows: usize, cols: usize, data: &[f32], dtype: DType) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Shape { name: name.to_string(), expected: vec![rows, cols], found: vec![data.len()] });
        }
        if dtype == DType::F16 && !gpu.features.shader_f16 {
            return Err(Error::options(format!(
                "f16 weights need the SHADER_F16 feature, which '{}' lacks; use f32",
                gpu.adapter.name
            )));
        }
        let row_bytes = (cols * dtype.size()) as u64;
        let cap = gpu.max_storage_binding();
        let rows_per_chunk = (cap / row_bytes.max(1)) as usize;
        if rows_per_chunk == 0 {
            return Err(Error::Limit {
                adapter: format!("{} (tensor '{name}')", gpu.adapter.name),
                limit: "max_storage_buffer_binding_size",
                needed: row_bytes,
                available: cap,
            });
        }
        let mut chunks = Vec::new();
        let mut row0 = 0;
        while row0 < rows {
            let n = rows_per_chunk.min(rows - row0);
            let part = &data[row0 * cols..(row0 + n) * cols];
            let buf = match dtype {
                DType::F32 => gpu.upload(name, bytemuck::cast_slice(part))?,
                DType::F16 => {
                    let h: Vec<half::f16> = part.iter().map(|&v| half::f16::from_f32(v)).collect();
                    gpu.upload(name, bytemuck::cast_slice(&h))?
                }
            };
            chunks.push(MatrixChunk { row0: row0 as u32, rows: n as u32, buf });
            row0 += n;
        }
        Ok(GpuMatrix { rows, cols, dtype, chunks })
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buf.size()).sum()
    }
}
