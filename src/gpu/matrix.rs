//! Weight matrices on the GPU, split into row chunks that each fit one storage binding
//! (the real BD3-LM output layer, 50258 x 768 f32, is 154 MB: above WebGPU's default 128 MiB).
//! Quantized matrices keep their packed codes and per-group scales; kernels dequantize on the fly.

use super::{Gpu, GpuBuffer};
use crate::error::{Error, Result};
use crate::quant::{quantizable, QFormat, QMatrix, GROUP};

/// Element type of weights on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    /// int8 codes, one f16 scale per 32 weights.
    Q8,
    /// 4-bit codes, one f16 scale and minimum per 32 weights.
    Q4,
}

impl DType {
    pub const ALL: [DType; 4] = [DType::F32, DType::F16, DType::Q8, DType::Q4];

    pub fn parse(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name().eq_ignore_ascii_case(s))
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Q8 => "q8",
            DType::Q4 => "q4",
        }
    }

    pub fn quant(self) -> Option<QFormat> {
        match self {
            DType::Q8 => Some(QFormat::Q8),
            DType::Q4 => Some(QFormat::Q4),
            _ => None,
        }
    }

    pub fn from_quant(q: QFormat) -> DType {
        match q {
            QFormat::Q8 => DType::Q8,
            QFormat::Q4 => DType::Q4,
        }
    }

    /// GPU bytes of one row of `cols` weights (with its scales).
    pub fn row_bytes(self, cols: usize) -> usize {
        match self {
            DType::F32 => cols * 4,
            DType::F16 => cols * 2,
            DType::Q8 => cols + cols / GROUP * 2,
            DType::Q4 => cols / 2 + cols / GROUP * 4,
        }
    }

    /// The values a matmul computes with when `w` (`[rows, cols]`) is stored as this type: the
    /// CPU twin of the upload (quantized types fall back to f16 for widths that are not whole
    /// groups, as on a device with `SHADER_F16`).
    pub fn as_computed(self, w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let f16_round = || w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        match self.quant() {
            Some(q) if quantizable(cols) => QMatrix::quantize(q, w, rows, cols).dequantize(),
            Some(_) => f16_round(),
            None if self == DType::F16 => f16_round(),
            None => w.to_vec(),
        }
    }

    /// WGSL that declares `WT` (the element type of the `w` binding) and the weight readers
    /// `w_at(e)` / `w_at4(e)` (element `e` of the chunk, four from `e` with `e % 4 == 0`).
    pub fn wgsl_weights(self) -> String {
        const PLAIN: &str = include_str!("../../shaders/include/weights_plain.wgsl");
        match self {
            DType::F32 => format!("alias WT = f32;\n{PLAIN}"),
            DType::F16 => format!("enable f16;\nalias WT = f16;\n{PLAIN}"),
            DType::Q8 => include_str!("../../shaders/include/weights_q8.wgsl").to_string(),
            DType::Q4 => include_str!("../../shaders/include/weights_q4.wgsl").to_string(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub struct MatrixChunk {
    pub row0: u32,
    pub rows: u32,
    pub buf: GpuBuffer,
    /// Per-group scale words of quantized chunks.
    pub meta: Option<GpuBuffer>,
}

/// A row-major `[rows, cols]` matrix (PyTorch Linear layout `[out, in]`).
pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    pub dtype: DType,
    pub chunks: Vec<MatrixChunk>,
}

impl GpuMatrix {
    /// The type a `[_, cols]` matrix is stored in when `dtype` is asked for: quantized formats
    /// need whole groups of 32 per row; other widths fall back to f16 (or f32 without
    /// `SHADER_F16`).
    pub fn effective_dtype(gpu: &Gpu, dtype: DType, cols: usize) -> DType {
        match dtype {
            DType::Q8 | DType::Q4 if !quantizable(cols) => {
                if gpu.features.shader_f16 {
                    DType::F16
                } else {
                    DType::F32
                }
            }
            d => d,
        }
    }

    /// Uploads `data` (`rows * cols` f32 values) as `dtype` (quantizing on the host for q8/q4),
    /// chunked by rows.
    pub fn upload(gpu: &Gpu, name: &str, rows: usize, cols: usize, data: &[f32], dtype: DType) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Shape { name: name.to_string(), expected: vec![rows, cols], found: vec![data.len()] });
        }
        let dtype = Self::effective_dtype(gpu, dtype, cols);
        if let Some(q) = dtype.quant() {
            return Self::upload_quantized(gpu, name, &QMatrix::quantize(q, data, rows, cols));
        }
        if dtype == DType::F16 && !gpu.features.shader_f16 {
            return Err(Error::options(format!(
                "f16 weights need the SHADER_F16 feature, which '{}' lacks; use f32",
                gpu.adapter.name
            )));
        }
        let chunks = Self::plan(gpu, name, rows, cols, dtype)?
            .into_iter()
            .map(|(row0, n)| {
                let part = &data[row0 * cols..(row0 + n) * cols];
                let buf = match dtype {
                    DType::F16 => {
                        let h: Vec<half::f16> = part.iter().map(|&v| half::f16::from_f32(v)).collect();
                        gpu.upload(name, bytemuck::cast_slice(&h))?
                    }
                    _ => gpu.upload(name, bytemuck::cast_slice(part))?,
                };
                Ok(MatrixChunk { row0: row0 as u32, rows: n as u32, buf, meta: None })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuMatrix { rows, cols, dtype, chunks })
    }

    /// Uploads packed weights as they are.
    pub fn upload_quantized(gpu: &Gpu, name: &str, q: &QMatrix) -> Result<Self> {
        let dtype = DType::from_quant(q.format);
        let chunks = Self::plan(gpu, name, q.rows, q.cols, dtype)?
            .into_iter()
            .map(|(row0, n)| {
                let part = if n == q.rows { None } else { Some(q.rows_slice(row0, n)) };
                let part = part.as_ref().unwrap_or(q);
                let buf = gpu.upload(name, &part.data)?;
                let meta = gpu.upload_u32(&format!("{name} scales"), &part.gpu_meta())?;
                Ok(MatrixChunk { row0: row0 as u32, rows: n as u32, buf, meta: Some(meta) })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuMatrix { rows: q.rows, cols: q.cols, dtype, chunks })
    }

    /// Row ranges that each fit one storage binding.
    fn plan(gpu: &Gpu, name: &str, rows: usize, cols: usize, dtype: DType) -> Result<Vec<(usize, usize)>> {
        let row_bytes = dtype.row_bytes(cols) as u64;
        let cap = gpu.max_storage_binding();
        let per_chunk = (cap / row_bytes.max(1)) as usize;
        if per_chunk == 0 {
            return Err(Error::Limit {
                adapter: format!("{} (tensor '{name}')", gpu.adapter.name),
                limit: "max_storage_buffer_binding_size",
                needed: row_bytes,
                available: cap,
            });
        }
        Ok((0..rows).step_by(per_chunk).map(|r| (r, per_chunk.min(rows - r))).collect())
    }

    /// Two matrices with the same width as one (rows of `a`, then rows of `b`), without copying.
    pub fn stack(a: GpuMatrix, b: GpuMatrix) -> Result<GpuMatrix> {
        if a.cols != b.cols || a.dtype != b.dtype {
            return Err(Error::Shape {
                name: "stacked matrix".into(),
                expected: vec![a.rows, a.cols],
                found: vec![b.rows, b.cols],
            });
        }
        let off = a.rows as u32;
        let mut chunks = a.chunks;
        chunks.extend(b.chunks.into_iter().map(|c| MatrixChunk { row0: c.row0 + off, ..c }));
        Ok(GpuMatrix { rows: a.rows + b.rows, cols: a.cols, dtype: a.dtype, chunks })
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buf.size() + c.meta.as_ref().map_or(0, |m| m.size())).sum()
    }
}
