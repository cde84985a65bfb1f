//! `config.json` of the supported architectures.

use crate::error::{Error, Result};
use serde_json::Value;

/// BD3-LM (Arriola et al., 2025) hyper-parameters, from the released checkpoints' keys.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Bd3lmConfig {
    pub hidden_dim: usize,
    pub n_heads: usize,
    /// Number of transformer layers (`n_blocks` in the released configs).
    pub n_layers: usize,
    pub cond_dim: usize,
    pub vocab_size: usize,
    /// Training context, also the KV-cache window.
    pub model_length: usize,
    pub block_size: usize,
    pub adaln: bool,
    pub time_conditioning: bool,
}

/// Largest sizes accepted before any allocation (far above released models, far below overflow).
const MAX_DIM: usize = 1 << 16;
const MAX_VOCAB: usize = 1 << 22;
const MAX_LAYERS: usize = 512;
const MAX_CONTEXT: usize = 1 << 20;

pub(crate) fn get_usize(v: &Value, key: &str) -> Result<usize> {
    match v.get(key) {
        None => Err(Error::config(format!("missing key '{key}'"))),
        Some(x) => x
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| Error::config(format!("'{key}' must be a non-negative integer, found {x}"))),
    }
}

pub(crate) fn get_bool(v: &Value, key: &str, default: Option<bool>) -> Result<bool> {
    match (v.get(key), default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Error::config(format!("missing key '{key}'"))),
        (Some(x), _) => x.as_bool().ok_or_else(|| Error::config(format!("'{key}' must be true or false, found {x}"))),
    }
}

pub(crate) fn check_range(key: &str, value: usize, min: usize, max: usize) -> Result<()> {
    if value < min || value > max {
        return Err(Error::config(format!("'{key}' = {value} is out of range [{min}, {max}]")));
    }
    Ok(())
}

impl Bd3lmConfig {
    pub fn from_json(v: &Value) -> Result<Self> {
        let c = Bd3lmConfig {
            hidden_dim: get_usize(v, "hidden_dim")?,
            n_heads: get_usize(v, "n_heads")?,
            n_layers: get_usize(v, "n_blocks")?,
            cond_dim: get_usize(v, "cond_dim")?,
            vocab_size: get_usize(v, "vocab_size")?,
            model_length: get_usize(v, "model_length")?,
            block_size: get_usize(v, "block_size")?,
            adaln: get_bool(v, "adaln", Some(true))?,
            time_conditioning: get_bool(v, "time_conditioning", Some(false))?,
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<()> {
        check_range("hidden_dim", self.hidden_dim, 1, MAX_DIM)?;
        check_range("n_heads", self.n_heads, 1, MAX_DIM)?;
        check_range("n_blocks", self.n_layers, 1, MAX_LAYERS)?;
        check_range("cond_dim", self.cond_dim, 1, MAX_DIM)?;
        check_range("vocab_size", self.vocab_size, 2, MAX_VOCAB)?;
        check_range("model_length", self.model_length, 1, MAX_CONTEXT)?;
        check_range("block_size", self.block_size, 1, crate::kernels::select::MAX_BLOCK)?;
        if !self.hidden_dim.is_multiple_of(self.n_heads) {
            return Err(Error::config(format!(
                "hidden_dim {} is not divisible by n_heads {}",
                self.hidden_dim, self.n_heads
            )));
        }
        let hd = self.head_dim();
        if !hd.is_multiple_of(2) || hd > crate::kernels::attention::MAX_HEAD_DIM {
            return Err(Error::config(format!(
                "head dimension {hd} must be even and at most {}",
                crate::kernels::attention::MAX_HEAD_DIM
            )));
        }
        if !self.model_length.is_multiple_of(self.block_size) || self.model_length < 2 * self.block_size {
            return Err(Error::config(format!(
                "model_length {} must be a multiple of block_size {} and hold at least two blocks",
                self.model_length, self.block_size
            )));
        }
        if !self.adaln {
            return Err(Error::config("adaln = false is not supported (all released BD3-LMs use adaLN)"));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_dim / self.n_heads
    }

    /// `[MASK]` is the last token of the vocabulary in BD3-LM checkpoints.
    pub fn mask_id(&self) -> u32 {
        (self.vocab_size - 1) as u32
    }
}

/// SDAR (JetAstra): Qwen3 modules with block-diffusion attention, in Hugging Face Qwen3 layout.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SdarConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f64,
    pub tie_word_embeddings: bool,
    pub block_size: usize,
    pub mask_token_id: u32,
    pub max_position_embeddings: usize,
}

impl SdarConfig {
    pub fn from_json(v: &Value) -> Result<Self> {
        let hidden_size = get_usize(v, "hidden_size")?;
        let n_heads = get_usize(v, "num_attention_heads")?;
        let head_dim = match v.get("head_dim") {
            Some(Value::Null) | None => hidden_size.checked_div(n_heads).unwrap_or(0),
            Some(_) => get_usize(v, "head_dim")?,
        };
        let rope_theta = v
            .get("rope_theta")
            .and_then(|x| x.as_f64())
            .or_else(|| v.get("rope_parameters").and_then(|p| p.get("rope_theta")).and_then(|x| x.as_f64()))
            .ok_or_else(|| Error::config("missing key 'rope_theta' (or 'rope_parameters.rope_theta')"))?;
        let eps = v
            .get("rms_norm_eps")
            .map(|x| x.as_f64().ok_or_else(|| Error::config(format!("'rms_norm_eps' must be a number, found {x}"))))
            .transpose()?
            .unwrap_or(1e-6);
        let c = SdarConfig {
            hidden_size,
            intermediate_size: get_usize(v, "intermediate_size")?,
            n_layers: get_usize(v, "num_hidden_layers")?,
            n_heads,
            n_kv_heads: match v.get("num_key_value_heads") {
                None | Some(Value::Null) => n_heads,
                Some(_) => get_usize(v, "num_key_value_heads")?,
            },
            head_dim,
            vocab_size: get_usize(v, "vocab_size")?,
            rms_norm_eps: eps as f32,
            rope_theta,
            tie_word_embeddings: get_bool(v, "tie_word_embeddings", Some(false))?,
            block_size: get_usize(v, "block_size")?,
            mask_token_id: get_usize(v, "mask_token_id")? as u32,
            max_position_embeddings: match v.get("max_position_embeddings") {
                None | Some(Value::Null) => 32768,
                Some(_) => get_usize(v, "max_position_embeddings")?,
            },
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<()> {
        check_range("hidden_size", self.hidden_size, 1, MAX_DIM)?;
        check_range("intermediate_size", self.intermediate_size, 1, 4 * MAX_DIM)?;
        check_range("num_hidden_layers", self.n_layers, 1, MAX_LAYERS)?;
        check_range("num_attention_heads", self.n_heads, 1, MAX_DIM)?;
        check_range("num_key_value_heads", self.n_kv_heads, 1, self.n_heads)?;
        check_range("vocab_size", self.vocab_size, 2, MAX_VOCAB)?;
        check_range("block_size", self.block_size, 1, crate::kernels::select::MAX_BLOCK)?;
        check_range("max_position_embeddings", self.max_position_embeddings, 2 * self.block_size, MAX_CONTEXT)?;
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::config(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.n_heads, self.n_kv_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2)
            || self.head_dim == 0
            || self.head_dim > crate::kernels::attention::MAX_HEAD_DIM
        {
            return Err(Error::config(format!(
                "head_dim {} must be even and in [2, {}]",
                self.head_dim,
                crate::kernels::attention::MAX_HEAD_DIM
            )));
        }
        if self.mask_token_id as usize >= self.vocab_size {
            return Err(Error::config(format!(
                "mask_token_id {} is outside the vocabulary of {}",
                self.mask_token_id, self.vocab_size
            )));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::config(format!("rope_theta must be > 1, got {}", self.rope_theta)));
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return Err(Error::config(format!("rms_norm_eps must be in (0, 1), got {}", self.rms_norm_eps)));
        }
        Ok(())
    }
}
