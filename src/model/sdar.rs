//! SDAR (JetAstra) and other Qwen3-based block diffusion models: the Qwen3 network unchanged,
//! with block-causal attention (bidirectional inside a block, causal across blocks) at absolute
//! positions. Per layer, as in Hugging Face Qwen3:
//!
//! ```text
//! h = RMS(x) * w_in
//! q = RMS_head(h Wq^T) * q_norm,  k = RMS_head(h Wk^T) * k_norm,  v = h Wv^T   (RoPE on q, k)
//! x = x + (softmax(q k^T / sqrt(head_dim) + mask) v) Wo^T          (KV heads shared by groups)
//! h = RMS(x) * w_post
//! x = x + W_down (silu(W_gate h) * W_up h)
//! ```
//! and finally `logits = (RMS(x) * w) W_lm^T` (`W_lm` = the embedding when tied). The cache keeps
//! post-RoPE keys at absolute positions and never slides.

use super::checkpoint::Checkpoint;
use super::config::SdarConfig;
use super::{Attn, Loader, Workspace};
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuffer, GpuMatrix, Recorder};
use crate::kernels::attention::{Attention, Mask};
use crate::kernels::elementwise::{Elementwise, Op, View};
use crate::kernels::kv_store::KvStore;
use crate::kernels::matmul::{Activation, Epilogue, Matmul};
use crate::kernels::norm::{Kind, Norm};
use crate::kernels::rope::{Rope, RopeTable};
use std::sync::Arc;

/// Host copies of one layer (f32).
pub struct SdarLayerWeights {
    pub input_norm: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub o: Vec<f32>,
    pub q_norm: Vec<f32>,
    pub k_norm: Vec<f32>,
    pub post_norm: Vec<f32>,
    /// gate_proj rows then up_proj rows: `[2 * intermediate, hidden]`.
    pub gate_up: Vec<f32>,
    pub down: Vec<f32>,
}

pub struct SdarWeights {
    pub embed: Vec<f32>,
    pub layers: Vec<SdarLayerWeights>,
    pub norm: Vec<f32>,
    /// `None` when tied to the embedding.
    pub lm_head: Option<Vec<f32>>,
}

/// The matmul weights of an SDAR checkpoint as (name, rows, cols): what `convert` quantizes.
pub fn matrices(c: &SdarConfig, has_lm_head: bool) -> Vec<(String, usize, usize)> {
    let (d, hd, i) = (c.hidden_size, c.head_dim, c.intermediate_size);
    let (qw, kw) = (c.n_heads * hd, c.n_kv_heads * hd);
    let mut m = vec![("model.embed_tokens.weight".to_string(), c.vocab_size, d)];
    if has_lm_head {
        m.push(("lm_head.weight".to_string(), c.vocab_size, d));
    }
    for l in 0..c.n_layers {
        let p = format!("model.layers.{l}.");
        for (name, rows, cols) in [
            ("self_attn.q_proj", qw, d),
            ("self_attn.k_proj", kw, d),
            ("self_attn.v_proj", kw, d),
            ("self_attn.o_proj", d, qw),
            ("mlp.gate_proj", i, d),
            ("mlp.up_proj", i, d),
            ("mlp.down_proj", d, i),
        ] {
            m.push((format!("{p}{name}.weight"), rows, cols));
        }
    }
    m
}

impl SdarWeights {
    pub fn from_checkpoint(c: &SdarConfig, ck: &Checkpoint) -> Result<Self> {
        let (d, hd, i) = (c.hidden_size, c.head_dim, c.intermediate_size);
        let (qw, kw) = (c.n_heads * hd, c.n_kv_heads * hd);
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let p = format!("model.layers.{l}.");
            let gate = ck.f32(&format!("{p}mlp.gate_proj.weight"), &[i, d])?;
            let up = ck.f32(&format!("{p}mlp.up_proj.weight"), &[i, d])?;
            layers.push(SdarLayerWeights {
                input_norm: ck.f32(&format!("{p}input_layernorm.weight"), &[d])?,
                q: ck.f32(&format!("{p}self_attn.q_proj.weight"), &[qw, d])?,
                k: ck.f32(&format!("{p}self_attn.k_proj.weight"), &[kw, d])?,
                v: ck.f32(&format!("{p}self_attn.v_proj.weight"), &[kw, d])?,
                o: ck.f32(&format!("{p}self_attn.o_proj.weight"), &[d, qw])?,
                q_norm: ck.f32(&format!("{p}self_attn.q_norm.weight"), &[hd])?,
                k_norm: ck.f32(&format!("{p}self_attn.k_norm.weight"), &[hd])?,
                post_norm: ck.f32(&format!("{p}post_attention_layernorm.weight"), &[d])?,
                gate_up: [gate, up].concat(),
                down: ck.f32(&format!("{p}mlp.down_proj.weight"), &[d, i])?,
            });
        }
        let lm_head = if c.tie_word_embeddings && !ck.has_weight("lm_head.weight") {
            None
        } else {
            Some(ck.f32("lm_head.weight", &[c.vocab_size, d])?)
        };
        Ok(SdarWeights {
            embed: ck.f32("model.embed_tokens.weight", &[c.vocab_size, d])?,
            layers,
            norm: ck.f32("model.norm.weight", &[d])?,
            lm_head,
        })
    }
}

struct Layer {
    input_norm: GpuBuffer,
    q: GpuMatrix,
    k: GpuMatrix,
    v: GpuMatrix,
    o: GpuMatrix,
    q_norm: GpuBuffer,
    k_norm: GpuBuffer,
    post_norm: GpuBuffer,
    gate_up: GpuMatrix,
    down: GpuMatrix,
}

pub struct Sdar {
    pub config: SdarConfig,
    pub dtype: DType,
    /// Tokens the KV cache holds (the usable context).
    pub context: usize,
    gpu: Arc<Gpu>,
    embed: GpuMatrix,
    layers: Vec<Layer>,
    norm: GpuBuffer,
    lm_head: Option<GpuMatrix>,
    rope: RopeTable,
}

/// Element offsets of the per-forward regions for `n` tokens: projections land in `ws.attn`
/// (`q_raw`, `k_raw`) and `ws.qkv` (`v`); the per-head norms write `q`, `k` into `ws.qkv` (a
/// kernel may not read and write one buffer).
struct Regions {
    q_raw: usize,
    k_raw: usize,
    v: usize,
    q: usize,
    k: usize,
}

impl Sdar {
    /// Streams the weights from `ck` to the GPU, one tensor at a time.
    pub fn load(gpu: &Arc<Gpu>, config: SdarConfig, ck: &Checkpoint, dtype: DType, context: usize) -> Result<Self> {
        let c = &config;
        let (d, hd, i) = (c.hidden_size, c.head_dim, c.intermediate_size);
        let (qw, kw) = (c.n_heads * hd, c.n_kv_heads * hd);
        let ld = Loader { gpu, ck, dtype };
        let layers = (0..c.n_layers)
            .map(|l| {
                let p = format!("model.layers.{l}.");
                let gate = ld.matrix(&format!("{p}mlp.gate_proj.weight"), i, d)?;
                let up = ld.matrix(&format!("{p}mlp.up_proj.weight"), i, d)?;
                Ok(Layer {
                    input_norm: ld.vector(&format!("{p}input_layernorm.weight"), d)?,
                    q: ld.matrix(&format!("{p}self_attn.q_proj.weight"), qw, d)?,
                    k: ld.matrix(&format!("{p}self_attn.k_proj.weight"), kw, d)?,
                    v: ld.matrix(&format!("{p}self_attn.v_proj.weight"), kw, d)?,
                    o: ld.matrix(&format!("{p}self_attn.o_proj.weight"), d, qw)?,
                    q_norm: ld.vector(&format!("{p}self_attn.q_norm.weight"), hd)?,
                    k_norm: ld.vector(&format!("{p}self_attn.k_norm.weight"), hd)?,
                    post_norm: ld.vector(&format!("{p}post_attention_layernorm.weight"), d)?,
                    // One matmul for both: gate rows, then up rows.
                    gate_up: GpuMatrix::stack(gate, up)?,
                    down: ld.matrix(&format!("{p}mlp.down_proj.weight"), d, i)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tied = c.tie_word_embeddings && !ck.has_weight("lm_head.weight");
        Ok(Sdar {
            embed: ld.matrix("model.embed_tokens.weight", c.vocab_size, d)?,
            lm_head: if tied { None } else { Some(ld.matrix("lm_head.weight", c.vocab_size, d)?) },
            norm: ld.vector("model.norm.weight", d)?,
            rope: RopeTable::new(gpu, hd, c.rope_theta, context)?,
            layers,
            context,
            dtype,
            gpu: gpu.clone(),
            config,
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    pub fn weight_bytes(&self) -> u64 {
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.o, &l.gate_up, &l.down].iter().map(|m| m.bytes()).sum::<u64>()
                    + [&l.input_norm, &l.q_norm, &l.k_norm, &l.post_norm].iter().map(|b| b.size()).sum::<u64>()
            })
            .sum();
        layers + self.embed.bytes() + self.lm_head.as_ref().map_or(0, |h| h.bytes()) + self.norm.size()
    }

    /// Workspace widths per token: (residual, qkv regions, attention/activation, gate|up).
    pub fn widths(&self) -> (usize, usize, usize, usize) {
        let c = &self.config;
        let (qw, kw) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
        (c.hidden_size, qw + 2 * kw, (qw + kw).max(c.intermediate_size), 2 * c.intermediate_size)
    }

    fn regions(&self, n: usize) -> Regions {
        let c = &self.config;
        let (qw, kw) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
        Regions { q_raw: 0, k_raw: n * qw, q: 0, k: n * qw, v: n * (qw + kw) }
    }

    fn rms(&self, rec: &mut Recorder, x: View, rows: usize, d: usize, weight: &GpuBuffer, y: View) -> Result<()> {
        Norm {
            kind: Kind::RmsNorm,
            x: x.buf,
            x_offset: x.offset,
            x_stride: x.stride,
            rows,
            d,
            weight,
            modulation: None,
            eps: self.config.rms_norm_eps,
            y: y.buf,
            y_offset: y.offset,
            y_stride: y.stride,
        }
        .encode(rec)
    }

    #[allow(clippy::too_many_arguments)]
    fn matmul(&self, rec: &mut Recorder, x: View, m: usize, w: &GpuMatrix, epi: Epilogue, y: View) -> Result<()> {
        Matmul {
            x: x.buf,
            x_offset: x.offset,
            x_stride: x.stride,
            m,
            w,
            bias: None,
            act: Activation::None,
            epi,
            y: y.buf,
            y_offset: y.offset,
            y_stride: y.stride,
        }
        .encode(rec)
    }

    /// Records the forward of `ws.ids[..n]` (see [`super::Bd3lm::encode_forward`]); `capture`
    /// receives the embedding, each layer's output, and (last) the final normalised states.
    pub fn encode_forward(
        &self,
        rec: &mut Recorder,
        ws: &Workspace,
        n: usize,
        attn: Attn,
        capture: Option<&[GpuBuffer]>,
    ) -> Result<()> {
        let c = &self.config;
        let (d, hd, h, kvh, i) = (c.hidden_size, c.head_dim, c.n_heads, c.n_kv_heads, c.intermediate_size);
        let (qw, kw) = (h * hd, kvh * hd);
        ws.check_rows(n)?;
        let pos0 = match attn {
            Attn::BlockCausal => 0,
            Attn::Cached(cache) => cache.len,
            Attn::Likelihood => return Err(Error::input("the likelihood (x_t ⊕ x_0) mode is BD3-LM only")),
        };
        if pos0 + n > self.rope.positions {
            return Err(Error::input(format!(
                "{} positions exceed the context of {} tokens",
                pos0 + n,
                self.rope.positions
            )));
        }
        fn v(buf: &GpuBuffer, offset: usize, stride: usize) -> View<'_> {
            View { buf, offset, stride }
        }
        let r = self.regions(n);
        let x = v(&ws.x, 0, d);
        let hv = v(&ws.h, 0, d);
        let copy = |rec: &mut Recorder, src: &GpuBuffer, idx: usize| {
            if let Some(b) = capture.and_then(|c| c.get(idx)) {
                rec.copy(src.raw(), 0, b.raw(), 0, (n * d * 4) as u64);
            }
        };
        crate::kernels::embed::Embed { table: &self.embed, ids: &ws.ids, ids_offset: 0, n, out: &ws.x, out_offset: 0 }
            .encode(rec)?;
        copy(rec, &ws.x, 0);
        for (li, l) in self.layers.iter().enumerate() {
            self.rms(rec, x, n, d, &l.input_norm, hv)?;
            self.matmul(rec, hv, n, &l.q, Epilogue::Store, v(&ws.attn, r.q_raw, qw))?;
            self.matmul(rec, hv, n, &l.k, Epilogue::Store, v(&ws.attn, r.k_raw, kw))?;
            self.matmul(rec, hv, n, &l.v, Epilogue::Store, v(&ws.qkv, r.v, kw))?;
            // Per-head RMSNorm, then RoPE at absolute positions.
            self.rms(rec, v(&ws.attn, r.q_raw, hd), n * h, hd, &l.q_norm, v(&ws.qkv, r.q, hd))?;
            self.rms(rec, v(&ws.attn, r.k_raw, hd), n * kvh, hd, &l.k_norm, v(&ws.qkv, r.k, hd))?;
            for (off, heads, stride) in [(r.q, h, qw), (r.k, kvh, kw)] {
                Rope { table: &self.rope, x: &ws.qkv, rows: n, heads, stride, offset: off, pos0 }.encode(rec)?;
            }
            let mut a = Attention {
                q: v(&ws.qkv, r.q, qw),
                k: v(&ws.qkv, r.k, kw),
                v: v(&ws.qkv, r.v, kw),
                out: v(&ws.attn, 0, qw),
                n_q: n,
                n_kv: n,
                heads: h,
                kv_heads: kvh,
                head_dim: hd,
                kv_start: 0,
                kv_cap: n,
                q_base: 0,
                mask: Mask::BlockCausal { block: c.block_size },
                rope: None,
            };
            if let Attn::Cached(cache) = attn {
                let (kc, vc) = &cache.layers[li];
                KvStore {
                    k: v(&ws.qkv, r.k, kw),
                    v: v(&ws.qkv, r.v, kw),
                    rows: n,
                    width: kw,
                    k_cache: kc,
                    v_cache: vc,
                    dst_start: cache.next_slot(),
                    cap: cache.capacity,
                }
                .encode(rec)?;
                a.k = v(kc, 0, kw);
                a.v = v(vc, 0, kw);
                a.n_kv = cache.len + n;
                a.kv_start = cache.start;
                a.kv_cap = cache.capacity;
                a.q_base = cache.len;
            }
            a.encode(rec)?;
            self.matmul(rec, v(&ws.attn, 0, qw), n, &l.o, Epilogue::Add, x)?;
            self.rms(rec, x, n, d, &l.post_norm, hv)?;
            self.matmul(rec, hv, n, &l.gate_up, Epilogue::Store, v(&ws.ff, 0, 2 * i))?;
            Elementwise {
                op: Op::SiluMul,
                rows: n,
                cols: i,
                a: v(&ws.ff, 0, 2 * i),
                b: Some(v(&ws.ff, i, 2 * i)),
                gate: None,
                y: v(&ws.attn, 0, i),
            }
            .encode(rec)?;
            self.matmul(rec, v(&ws.attn, 0, i), n, &l.down, Epilogue::Add, x)?;
            if li + 1 < self.layers.len() {
                copy(rec, &ws.x, li + 1);
            }
        }
        self.rms(rec, x, n, d, &self.norm, hv)?;
        copy(rec, &ws.h, self.layers.len());
        Ok(())
    }

    pub fn encode_logits(&self, rec: &mut Recorder, ws: &Workspace, row0: usize, rows: usize) -> Result<()> {
        super::encode_head(rec, ws, self.lm_head.as_ref().unwrap_or(&self.embed), None, row0, rows)
    }
}
