//! Models: configuration, checkpoint loading and the forward pass of each architecture, behind
//! one [`Model`] interface that the sampler, cache, CLI and web layer use without knowing which
//! architecture runs.

pub mod bd3lm;
pub mod checkpoint;
pub mod config;
pub mod convert;
pub mod files;
pub mod reference;
pub mod sdar;
pub mod synthetic;

pub use bd3lm::Bd3lm;
pub use checkpoint::Checkpoint;
pub use config::{Bd3lmConfig, SdarConfig};
pub use files::{ModelFiles, Weights};
pub use sdar::Sdar;

use crate::cache::KvCache;
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuffer, GpuMatrix, Recorder};
use std::sync::Arc;

/// Which attention a forward pass runs.
#[derive(Clone, Copy)]
pub enum Attn<'a> {
    /// Block-causal over the whole input (no cache).
    BlockCausal,
    /// The current block against the KV cache; its keys/values are written after the live
    /// entries (call [`KvCache::commit`] after submitting to keep them).
    Cached(&'a KvCache),
    /// The training mask over `x_t ⊕ x_0` (the input holds both halves).
    Likelihood,
}

/// Supported architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Bd3lm,
    Sdar,
}

/// What the generator needs to know about a model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub mask_id: u32,
    pub block_size: usize,
    /// Training context; for BD3-LM also the sliding KV window.
    pub context: usize,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub dtype: DType,
    /// Whether prompts start with BOS (BD3-LM was trained that way; chat templates bring their own).
    pub add_bos: bool,
    /// Whether the prompt's whole blocks are prefilled in one pass (SDAR) or one forward per
    /// block (BD3-LM, whose sliding window drops blocks one at a time).
    pub prefill_in_one_pass: bool,
}

/// Loading options.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Weight precision on the GPU; `None` picks f16 when the device has `SHADER_F16`.
    pub dtype: Option<DType>,
    /// KV-cache capacity in tokens for models without a sliding window (SDAR); default
    /// min(max_position_embeddings, 4096).
    pub context: Option<usize>,
}

/// Scratch buffers for one forward of up to `rows` tokens, allocated once and reused.
pub struct Workspace {
    pub rows: usize,
    pub ids: GpuBuffer,
    pub x: GpuBuffer,
    pub h: GpuBuffer,
    pub qkv: GpuBuffer,
    pub attn: GpuBuffer,
    pub ff: GpuBuffer,
    pub logits: GpuBuffer,
    pub logits_rows: usize,
    pub vocab: usize,
}

/// Per-token widths of a workspace's buffers.
#[derive(Clone, Copy, Debug)]
pub struct Widths {
    /// Residual stream and normalised input (`x`, `h`).
    pub hidden: usize,
    pub qkv: usize,
    /// Attention output (and, for SwiGLU models, the activation).
    pub attn: usize,
    pub ff: usize,
}

impl Workspace {
    /// Buffers for `rows` tokens and at most `max_logit_rows` rows of logits at a time.
    pub fn new(gpu: &Gpu, widths: Widths, rows: usize, vocab: usize, max_logit_rows: usize) -> Result<Self> {
        let f = |name: &str, w: usize| gpu.storage(name, (rows * w * 4) as u64);
        // Logit rows: as many as fit one binding (and 64 MiB, to stay friendly to browsers).
        let cap = gpu.max_storage_binding().min(64 << 20) as usize;
        let logits_rows = (cap / (vocab * 4)).clamp(1, rows.max(1)).min(max_logit_rows.max(1));
        Ok(Workspace {
            rows,
            ids: gpu.storage("ids", (rows * 4) as u64)?,
            x: f("x", widths.hidden)?,
            h: f("h", widths.hidden)?,
            qkv: f("qkv", widths.qkv)?,
            attn: f("attn", widths.attn)?,
            ff: f("ff", widths.ff)?,
            logits: gpu.storage("logits", (logits_rows * vocab * 4) as u64)?,
            logits_rows,
            vocab,
        })
    }

    pub fn check_rows(&self, n: usize) -> Result<()> {
        if n == 0 || n > self.rows {
            return Err(Error::input(format!("a forward of {n} tokens does not fit a workspace of {}", self.rows)));
        }
        Ok(())
    }
}

/// A loaded model of any supported architecture.
pub enum Model {
    Bd3lm(Bd3lm),
    Sdar(Sdar),
}

impl Model {
    /// Reads the architecture from `config.json` and uploads the weights.
    pub fn load(gpu: &Arc<Gpu>, files: &ModelFiles, options: &LoadOptions) -> Result<Model> {
        let dtype = match options.dtype {
            Some(DType::F16) if !gpu.features.shader_f16 => {
                return Err(Error::options(format!(
                    "f16 weights need SHADER_F16, which '{}' lacks; use f32, q8 or q4",
                    gpu.adapter.name
                )))
            }
            Some(d) => d,
            None => match stored_quantization(&files.config)? {
                Some(q) => DType::from_quant(q),
                None if gpu.features.shader_f16 => DType::F16,
                None => DType::F32,
            },
        };
        match detect(&files.config)? {
            Architecture::Bd3lm => {
                let cfg = Bd3lmConfig::from_json(&files.config)?;
                let d = cfg.hidden_dim;
                preflight(
                    gpu,
                    dtype,
                    &[("backbone.blocks.*.mlp.2", 4 * d), ("output_layer.linear", d)],
                    cfg.vocab_size,
                    cfg.model_length * d,
                )?;
                if cfg.time_conditioning {
                    return Err(Error::config(
                        "time_conditioning = true is not supported yet (released BD3-LMs use false)",
                    ));
                }
                let ck = files.checkpoint()?;
                Ok(Model::Bd3lm(Bd3lm::load(gpu, cfg, &ck, dtype)?))
            }
            Architecture::Sdar => {
                let cfg = SdarConfig::from_json(&files.config)?;
                let context = options.context.unwrap_or(4096).min(cfg.max_position_embeddings);
                if context < 2 * cfg.block_size {
                    return Err(Error::options(format!("context {context} must hold at least two blocks")));
                }
                preflight(
                    gpu,
                    dtype,
                    &[("mlp.down_proj", cfg.intermediate_size), ("self_attn.o_proj", cfg.n_heads * cfg.head_dim)],
                    cfg.vocab_size,
                    context * cfg.n_kv_heads * cfg.head_dim,
                )?;
                let ck = files.checkpoint()?;
                Ok(Model::Sdar(Sdar::load(gpu, cfg, &ck, dtype, context)?))
            }
        }
    }

    pub fn info(&self) -> ModelInfo {
        match self {
            Model::Bd3lm(m) => ModelInfo {
                architecture: Architecture::Bd3lm,
                vocab_size: m.config.vocab_size,
                mask_id: m.config.mask_id(),
                block_size: m.config.block_size,
                context: m.config.model_length,
                layers: m.config.n_layers,
                hidden: m.config.hidden_dim,
                heads: m.config.n_heads,
                dtype: m.dtype,
                add_bos: true,
                prefill_in_one_pass: false,
            },
            Model::Sdar(m) => ModelInfo {
                architecture: Architecture::Sdar,
                vocab_size: m.config.vocab_size,
                mask_id: m.config.mask_token_id,
                block_size: m.config.block_size,
                context: m.context,
                layers: m.config.n_layers,
                hidden: m.config.hidden_size,
                heads: m.config.n_heads,
                dtype: m.dtype,
                add_bos: false,
                prefill_in_one_pass: true,
            },
        }
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        match self {
            Model::Bd3lm(m) => m.gpu(),
            Model::Sdar(m) => m.gpu(),
        }
    }

    pub fn weight_bytes(&self) -> u64 {
        match self {
            Model::Bd3lm(m) => m.weight_bytes(),
            Model::Sdar(m) => m.weight_bytes(),
        }
    }

    /// An empty KV cache with this model's capacity and window rules.
    pub fn new_cache(&self) -> Result<KvCache> {
        match self {
            Model::Bd3lm(m) => {
                let c = &m.config;
                KvCache::new(m.gpu(), c.n_layers, c.hidden_dim, c.model_length, Some((c.model_length, c.block_size)))
            }
            Model::Sdar(m) => {
                let c = &m.config;
                KvCache::new(m.gpu(), c.n_layers, c.n_kv_heads * c.head_dim, m.context, None)
            }
        }
    }

    /// Scratch for forwards of up to `rows` tokens (and as many logit rows as fit).
    pub fn workspace(&self, rows: usize) -> Result<Workspace> {
        self.workspace_with_logits(rows, rows)
    }

    /// Scratch for `rows` tokens with at most `logit_rows` rows of logits (prefill needs none).
    pub fn workspace_with_logits(&self, rows: usize, logit_rows: usize) -> Result<Workspace> {
        let (gpu, widths, vocab) = match self {
            Model::Bd3lm(m) => {
                let (d, qkv, ff) = m.widths();
                (m.gpu(), Widths { hidden: d, qkv, attn: d, ff }, m.config.vocab_size)
            }
            Model::Sdar(m) => {
                let (hidden, qkv, attn, ff) = m.widths();
                (m.gpu(), Widths { hidden, qkv, attn, ff }, m.config.vocab_size)
            }
        };
        Workspace::new(gpu, widths, rows, vocab, logit_rows)
    }

    pub fn encode_forward(
        &self,
        rec: &mut Recorder,
        ws: &Workspace,
        n: usize,
        attn: Attn,
        capture: Option<&[GpuBuffer]>,
    ) -> Result<()> {
        match self {
            Model::Bd3lm(m) => m.encode_forward(rec, ws, n, attn, capture),
            Model::Sdar(m) => m.encode_forward(rec, ws, n, attn, capture),
        }
    }

    pub fn encode_logits(&self, rec: &mut Recorder, ws: &Workspace, row0: usize, rows: usize) -> Result<()> {
        match self {
            Model::Bd3lm(m) => m.encode_logits(rec, ws, row0, rows),
            Model::Sdar(m) => m.encode_logits(rec, ws, row0, rows),
        }
    }

    /// Runs one forward of `ids` and reads back the logits of rows `rows` (tools and tests; the
    /// generator never reads logits). With `capture`, also returns the residual stream after the
    /// embedding and each layer.
    pub async fn forward_logits(
        &self,
        ws: &Workspace,
        ids: &[u32],
        attn: Attn<'_>,
        rows: std::ops::Range<usize>,
        capture: bool,
    ) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let gpu = self.gpu();
        let info = self.info();
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= info.vocab_size) {
            return Err(Error::input(format!("token id {bad} is outside the vocabulary of {}", info.vocab_size)));
        }
        ws.check_rows(ids.len())?;
        gpu.write(&ws.ids, 0, bytemuck::cast_slice(ids));
        let d = info.hidden;
        let caps = if capture {
            (0..=info.layers)
                .map(|i| gpu.storage(&format!("capture {i}"), (ids.len() * d * 4) as u64))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let mut rec = gpu.recorder();
        self.encode_forward(&mut rec, ws, ids.len(), attn, capture.then_some(&caps[..]))?;
        rec.submit()?;
        let mut hidden = Vec::new();
        for c in &caps {
            hidden.push(gpu.read_f32(c, 0, ids.len() * d).await?);
        }
        let v = info.vocab_size;
        let mut logits = Vec::with_capacity(rows.len() * v);
        let mut r = rows.start;
        while r < rows.end {
            let m = ws.logits_rows.min(rows.end - r);
            let mut rec = gpu.recorder();
            self.encode_logits(&mut rec, ws, r, m)?;
            rec.submit()?;
            logits.extend(gpu.read_f32(&ws.logits, 0, m * v).await?);
            r += m;
        }
        Ok((logits, hidden))
    }
}

/// `logits[..rows] = h[row0..row0 + rows] W^T (+ b)` into `ws.logits`: the output layer of every
/// architecture.
pub(crate) fn encode_head(
    rec: &mut Recorder,
    ws: &Workspace,
    w: &crate::gpu::GpuMatrix,
    bias: Option<&GpuBuffer>,
    row0: usize,
    rows: usize,
) -> Result<()> {
    if rows > ws.logits_rows {
        return Err(Error::input(format!("{rows} logit rows exceed the workspace's {}", ws.logits_rows)));
    }
    let d = w.cols;
    crate::kernels::matmul::Matmul {
        x: &ws.h,
        x_offset: row0 * d,
        x_stride: d,
        m: rows,
        w,
        bias,
        act: crate::kernels::matmul::Activation::None,
        epi: crate::kernels::matmul::Epilogue::Store,
        y: &ws.logits,
        y_offset: 0,
        y_stride: w.rows,
    }
    .encode(rec)
}

/// Streams tensors from a checkpoint to the GPU.
pub(crate) struct Loader<'a> {
    pub gpu: &'a Arc<Gpu>,
    pub ck: &'a Checkpoint<'a>,
    pub dtype: DType,
}

impl Loader<'_> {
    /// A `[rows, cols]` weight as `self.dtype`: packed codes go up as they are when the file
    /// holds them in that format; anything else is read as f32 (dequantized if need be) and
    /// converted.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<GpuMatrix> {
        if let (Some(stored), Some(want)) = (self.ck.quantized(name), self.dtype.quant()) {
            if stored == want {
                return GpuMatrix::upload_quantized(self.gpu, name, &self.ck.qmatrix(name, rows, cols)?);
            }
        }
        let data = self.ck.f32(name, &[rows, cols])?;
        GpuMatrix::upload(self.gpu, name, rows, cols, &data, self.dtype)
    }

    /// An f32 vector (norm weights, biases).
    pub fn vector(&self, name: &str, len: usize) -> Result<GpuBuffer> {
        self.gpu.upload_f32(name, &self.ck.f32(name, &[len])?)
    }
}

/// Checks, before anything is allocated, that one row of the widest weights, one row of logits
/// and one layer of the KV cache each fit a storage binding of this device.
fn preflight(gpu: &Gpu, dtype: DType, widest: &[(&str, usize)], vocab: usize, kv_layer_floats: usize) -> Result<()> {
    let cap = gpu.max_storage_binding();
    let mut needs: Vec<(String, u64)> =
        widest.iter().map(|(name, cols)| (format!("a row of {name}"), dtype.row_bytes(*cols) as u64)).collect();
    needs.push(("one row of logits".into(), (vocab * 4) as u64));
    needs.push(("one layer of the KV cache".into(), (kv_layer_floats * 4) as u64));
    for (what, bytes) in needs {
        if bytes > cap {
            return Err(Error::Limit {
                adapter: format!("{} ({what})", gpu.adapter.name),
                limit: "max_storage_buffer_binding_size",
                needed: bytes,
                available: cap,
            });
        }
    }
    Ok(())
}

/// The packed format a converted model declares in `config.json`'s `quantization` block
/// (`{"method": "blockdiff", "format": "q8" | "q4", "group_size": 32}`), if any.
pub fn stored_quantization(config: &serde_json::Value) -> Result<Option<crate::quant::QFormat>> {
    let Some(q) = config.get("quantization").filter(|q| !q.is_null()) else { return Ok(None) };
    let format = q.get("format").and_then(|f| f.as_str()).unwrap_or("");
    let group = q.get("group_size").and_then(|g| g.as_u64());
    let method = q.get("method").and_then(|m| m.as_str()).unwrap_or("");
    let parsed = match format {
        "q8" => crate::quant::QFormat::Q8,
        "q4" => crate::quant::QFormat::Q4,
        _ => {
            return Err(Error::config(format!(
                "quantization.format '{format}' is not supported (blockdiff reads q8 and q4 from `blockdiff convert`)"
            )))
        }
    };
    if method != "blockdiff" || group != Some(crate::quant::GROUP as u64) {
        return Err(Error::config(format!(
            "quantization block {q} is not blockdiff's (method \"blockdiff\", group_size {})",
            crate::quant::GROUP
        )));
    }
    Ok(Some(parsed))
}

/// The architecture named by `config.json` (`model_type`, else `architectures`).
pub fn detect(config: &serde_json::Value) -> Result<Architecture> {
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    let archs: Vec<&str> = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if model_type.eq_ignore_ascii_case("bd3lm") || archs.iter().any(|a| a.eq_ignore_ascii_case("bd3lm")) {
        return Ok(Architecture::Bd3lm);
    }
    if model_type.eq_ignore_ascii_case("sdar") || archs.iter().any(|a| a.to_ascii_lowercase().starts_with("sdar")) {
        return Ok(Architecture::Sdar);
    }
    Err(Error::config(format!(
        "unsupported model_type '{model_type}' (architectures {archs:?}); supported: bd3lm, sdar"
    )))
}
