//! Safetensors checkpoints: tensor lookup with shape checks and f32/f16/bf16 → f32 conversion.

use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};

/// A parsed safetensors file held in memory.
pub struct Checkpoint<'a> {
    file: String,
    st: SafeTensors<'a>,
}

impl<'a> Checkpoint<'a> {
    /// Parses the header; `file` names the source in error messages.
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::checkpoint(file, format!("not a valid safetensors file: {e}")))?;
        Ok(Checkpoint { file: file.to_string(), st })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.st.names().into_iter().map(|s| s.to_string()).collect();
        n.sort();
        n
    }

    /// Shape of `name`, or a "missing tensor" error.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.view(name)?.shape().to_vec())
    }

    fn view(&self, name: &str) -> Result<safetensors::tensor::TensorView<'_>> {
        self.st.tensor(name).map_err(|_| Error::checkpoint(&self.file, format!("missing tensor '{name}'")))
    }

    /// The tensor as f32, checking its shape (an empty `shape` means a scalar).
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        if view.shape() != shape {
            return Err(Error::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let data = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(Error::checkpoint(
                    &self.file,
                    format!("tensor '{name}' has dtype {other:?}; only F32, F16 and BF16 are supported"),
                ))
            }
        };
        if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::checkpoint(
                &self.file,
                format!("tensor '{name}' holds a non-finite value at element {bad}"),
            ));
        }
        Ok(out)
    }

    /// The tensor as i32 token ids (golden files store ids as I32 or I64).
    pub fn ids(&self, name: &str) -> Result<Vec<u32>> {
        let view = self.view(name)?;
        let data = view.data();
        let ids: Vec<i64> = match view.dtype() {
            Dtype::I32 => data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect(),
            Dtype::I64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect(),
            other => {
                return Err(Error::checkpoint(
                    &self.file,
                    format!("tensor '{name}' has dtype {other:?}, expected integer ids"),
                ))
            }
        };
        ids.into_iter()
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| Error::checkpoint(&self.file, format!("tensor '{name}' holds a negative id")))
            })
            .collect()
    }
}
