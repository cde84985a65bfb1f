//! Block-wise weight quantization (host side): the packed formats that `blockdiff convert`
//! writes, the GPU uploads as they are, and the matmul/embedding kernels dequantize on the fly.
//!
//! Every group of [`GROUP`] consecutive weights of a row has its own f16 scale:
//! - **q8**: `w ≈ scale · q`, `q` an int8 in [-127, 127] (`scale = max|w| / 127`);
//! - **q4**: `w ≈ min + scale · q`, `q` a nibble in [0, 15] (`scale = (max - min) / 15`); two
//!   weights per byte, the even index in the low nibble.
//!
//! In a safetensors file a quantized weight `W` (`[rows, cols]`) is stored as
//! `W.qweight` (q8: I8 `[rows, cols]`; q4: U8 `[rows, cols / 2]`), `W.scales` (F16
//! `[rows, cols / 32]`) and, for q4, `W.mins` (F16 `[rows, cols / 32]`).

use half::f16;

/// Weights per scale.
pub const GROUP: usize = 32;

/// A quantized format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QFormat {
    Q8,
    Q4,
}

impl QFormat {
    pub fn name(self) -> &'static str {
        match self {
            QFormat::Q8 => "q8",
            QFormat::Q4 => "q4",
        }
    }
    pub fn bits(self) -> usize {
        match self {
            QFormat::Q8 => 8,
            QFormat::Q4 => 4,
        }
    }
    /// Bytes of packed weights in a row of `cols`.
    pub fn row_bytes(self, cols: usize) -> usize {
        cols * self.bits() / 8
    }
}

/// A quantized `[rows, cols]` matrix in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct QMatrix {
    pub format: QFormat,
    pub rows: usize,
    pub cols: usize,
    /// Packed weights, `rows * row_bytes(cols)` bytes.
    pub data: Vec<u8>,
    /// One per group, row-major `[rows, cols / GROUP]`.
    pub scales: Vec<f16>,
    /// q4 only (empty for q8).
    pub mins: Vec<f16>,
}

/// Whether a matrix with `cols` columns can be quantized (whole groups per row).
pub fn quantizable(cols: usize) -> bool {
    cols > 0 && cols.is_multiple_of(GROUP)
}

impl QMatrix {
    /// Quantizes row-major `w`; `cols` must be a multiple of [`GROUP`].
    pub fn quantize(format: QFormat, w: &[f32], rows: usize, cols: usize) -> QMatrix {
        debug_assert!(quantizable(cols) && w.len() == rows * cols);
        let groups = rows * cols / GROUP;
        let mut q = QMatrix {
            format,
            rows,
            cols,
            data: Vec::with_capacity(rows * format.row_bytes(cols)),
            scales: Vec::with_capacity(groups),
            mins: Vec::new(),
        };
        for g in w.chunks_exact(GROUP) {
            match format {
                QFormat::Q8 => q.push_q8(g),
                QFormat::Q4 => q.push_q4(g),
            }
        }
        q
    }

    fn push_q8(&mut self, g: &[f32]) {
        let amax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
        // Round the scale to f16 first, so the codes are chosen for the scale the GPU will use.
        let scale = f16::from_f32(amax / 127.0);
        let s = scale.to_f32();
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        self.scales.push(scale);
        self.data.extend(g.iter().map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8));
    }

    fn push_q4(&mut self, g: &[f32]) {
        let lo = g.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let hi = g.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let min = f16::from_f32(lo);
        let scale = f16::from_f32((hi - min.to_f32()) / 15.0);
        let (m, s) = (min.to_f32(), scale.to_f32());
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        let code = |v: f32| ((v - m) * inv).round().clamp(0.0, 15.0) as u8;
        self.scales.push(scale);
        self.mins.push(min);
        self.data.extend(g.chunks_exact(2).map(|p| code(p[0]) | (code(p[1]) << 4)));
    }

    /// The f32 values the kernels compute with.
    pub fn dequantize(&self) -> Vec<f32> {
        let per_group = self.format.row_bytes(GROUP);
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for (g, bytes) in self.data.chunks_exact(per_group).enumerate() {
            let s = self.scales[g].to_f32();
            match self.format {
                QFormat::Q8 => out.extend(bytes.iter().map(|&b| s * (b as i8) as f32)),
                QFormat::Q4 => {
                    let m = self.mins[g].to_f32();
                    for &b in bytes {
                        out.push(m + s * (b & 15) as f32);
                        out.push(m + s * (b >> 4) as f32);
                    }
                }
            }
        }
        out
    }

    /// Rows `r0..r0 + n` as their own matrix (for row-chunked GPU upload).
    pub fn rows_slice(&self, r0: usize, n: usize) -> QMatrix {
        let rb = self.format.row_bytes(self.cols);
        let gr = self.cols / GROUP;
        QMatrix {
            format: self.format,
            rows: n,
            cols: self.cols,
            data: self.data[r0 * rb..(r0 + n) * rb].to_vec(),
            scales: self.scales[r0 * gr..(r0 + n) * gr].to_vec(),
            mins: if self.mins.is_empty() { Vec::new() } else { self.mins[r0 * gr..(r0 + n) * gr].to_vec() },
        }
    }

    /// The per-group words the kernels read: q8 packs two f16 scales per u32 (group `g` in half
    /// `g % 2` of word `g / 2`); q4 packs `(scale, min)` of group `g` into word `g`.
    pub fn gpu_meta(&self) -> Vec<u32> {
        let bits = |h: f16| h.to_bits() as u32;
        match self.format {
            QFormat::Q8 => self.scales.chunks(2).map(|p| bits(p[0]) | p.get(1).map_or(0, |&h| bits(h) << 16)).collect(),
            QFormat::Q4 => self.scales.iter().zip(&self.mins).map(|(&s, &m)| bits(s) | (bits(m) << 16)).collect(),
        }
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + 2 * (self.scales.len() + self.mins.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * (1.0 + (i % 5) as f32)).collect()
    }

    #[test]
    fn error_is_within_half_a_step() {
        let (rows, cols) = (3, 64);
        let w = wave(rows * cols);
        for format in [QFormat::Q8, QFormat::Q4] {
            let q = QMatrix::quantize(format, &w, rows, cols);
            assert_eq!(q.data.len(), rows * format.row_bytes(cols));
            let back = q.dequantize();
            for (g, (a, b)) in w.chunks(GROUP).zip(back.chunks(GROUP)).enumerate() {
                // Half a quantization step, plus f16 rounding of the scale/min.
                let step = q.scales[g].to_f32();
                let tol = 0.5 * step + 2e-3 * a.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() <= tol, "{format:?} group {g}: {x} vs {y} (tol {tol})");
                }
            }
        }
    }

    #[test]
    fn zero_groups_and_constant_q4_groups_are_exact() {
        let mut w = vec![0.0f32; 32];
        w.extend(std::iter::repeat_n(0.25f32, 32));
        assert_eq!(QMatrix::quantize(QFormat::Q4, &w, 1, 64).dequantize(), w);
        assert_eq!(QMatrix::quantize(QFormat::Q8, &w[..32], 1, 32).dequantize(), w[..32].to_vec());
    }

    #[test]
    fn row_slices_and_meta_words() {
        let w = wave(4 * 96);
        let q = QMatrix::quantize(QFormat::Q8, &w, 4, 96);
        let part = q.rows_slice(1, 2);
        assert_eq!(part.dequantize(), q.dequantize()[96..3 * 96].to_vec());
        // 6 groups in 2 rows: 3 words, the low half first.
        let meta = part.gpu_meta();
        assert_eq!(meta.len(), 3);
        assert_eq!(meta[0] & 0xffff, part.scales[0].to_bits() as u32);
        assert_eq!(meta[0] >> 16, part.scales[1].to_bits() as u32);
        let q4 = QMatrix::quantize(QFormat::Q4, &w, 4, 96);
        assert_eq!(q4.gpu_meta()[5] >> 16, q4.mins[5].to_bits() as u32);
    }
}
