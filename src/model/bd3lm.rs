//! BD3-LM (Arriola et al., ICLR 2025): the DiT backbone of the released checkpoints.
//!
//! With time conditioning off, the adaLN conditioning vector is the constant
//! `c = silu(sigma_map(0))`, so every layer's `(shift, scale, gate)` vectors are computed once at
//! load. Per layer, as in the paper's code:
//!
//! ```text
//! h = LN(x) * w1 * (1 + scale1) + shift1
//! q, k, v = h W_qkv^T                       (RoPE on q and k)
//! x = x + gate1 * (softmax(q k^T / sqrt(d) + mask) v) W_out^T
//! h = LN(x) * w2 * (1 + scale2) + shift2
//! x = x + gate2 * (W2 gelu_tanh(W1 h + b1) + b2)
//! ```
//! and finally `logits = (LN(x) * w * (1 + scale) + shift) W_out^T + b`.

use super::checkpoint::Checkpoint;
use super::config::Bd3lmConfig;
use super::{Attn, Loader, Workspace};
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuffer, GpuMatrix, Recorder};
use crate::kernels::attention::{Attention, Mask};
use crate::kernels::elementwise::View;
use crate::kernels::kv_store::KvStore;
use crate::kernels::matmul::{Activation, Epilogue, Matmul};
use crate::kernels::norm::{Kind, Norm};
use crate::kernels::rope::RopeTable;
use std::sync::Arc;

const LN_EPS: f32 = 1e-5;
const ROPE_BASE: f64 = 10000.0;

/// Host copies of one layer's weights (f32), shared by the GPU upload and the CPU reference.
pub struct LayerWeights {
    pub norm1: Vec<f32>,
    pub qkv: Vec<f32>,
    pub out: Vec<f32>,
    pub norm2: Vec<f32>,
    pub mlp0_w: Vec<f32>,
    pub mlp0_b: Vec<f32>,
    pub mlp2_w: Vec<f32>,
    pub mlp2_b: Vec<f32>,
    /// shift1, scale1, gate1, shift2, scale2, gate2 (from adaLN at the constant c).
    pub ada: [Vec<f32>; 6],
}

pub struct Bd3lmWeights {
    pub embed: Vec<f32>,
    pub layers: Vec<LayerWeights>,
    pub final_norm: Vec<f32>,
    pub final_shift: Vec<f32>,
    pub final_scale: Vec<f32>,
    pub head_w: Vec<f32>,
    pub head_b: Vec<f32>,
}

fn linear(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f32> {
    let k = x.len();
    w.chunks(k).zip(b).map(|(row, bias)| row.iter().zip(x).map(|(a, c)| a * c).sum::<f32>() + bias).collect()
}

fn silu(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(crate::kernels::elementwise::silu).collect()
}

/// The constant conditioning vector `c = silu(MLP(timestep_embedding(0)))`; the DiT embedding
/// of t = 0 is `[cos(0·f), sin(0·f)] = [1.., 0..]`.
fn conditioning(cfg: &Bd3lmConfig, ck: &Checkpoint) -> Result<Vec<f32>> {
    let cd = cfg.cond_dim;
    let p = "backbone.sigma_map.mlp.";
    let freq = ck.shape(&format!("{p}0.weight"))?.get(1).copied().unwrap_or(0);
    if freq == 0 || freq % 2 != 0 {
        return Err(Error::checkpoint(ck.file(), "sigma_map.mlp.0.weight must be [cond_dim, even frequency size]"));
    }
    let temb: Vec<f32> = (0..freq).map(|i| if i < freq / 2 { 1.0 } else { 0.0 }).collect();
    let w0 = ck.f32(&format!("{p}0.weight"), &[cd, freq])?;
    let b0 = ck.f32(&format!("{p}0.bias"), &[cd])?;
    let w2 = ck.f32(&format!("{p}2.weight"), &[cd, cd])?;
    let b2 = ck.f32(&format!("{p}2.bias"), &[cd])?;
    Ok(silu(linear(&w2, &b2, &silu(linear(&w0, &b0, &temb)))))
}

/// `parts` vectors of width `d` from the adaLN modulation `prefix` at the constant `c`.
fn modulation(ck: &Checkpoint, prefix: &str, parts: usize, d: usize, c: &[f32]) -> Result<Vec<Vec<f32>>> {
    let w = ck.f32(&format!("{prefix}adaLN_modulation.weight"), &[parts * d, c.len()])?;
    let b = ck.f32(&format!("{prefix}adaLN_modulation.bias"), &[parts * d])?;
    Ok(linear(&w, &b, c).chunks(d).map(<[f32]>::to_vec).collect())
}

/// The checkpoint's weight names (`backbone.` + these).
fn layer_prefix(i: usize) -> String {
    format!("backbone.blocks.{i}.")
}
const OUTPUT: &str = "backbone.output_layer.";
const EMBED: &str = "backbone.vocab_embed.embedding";

/// The matmul weights of a BD3-LM checkpoint as (name, rows, cols): what `convert` quantizes.
pub fn matrices(cfg: &Bd3lmConfig) -> Vec<(String, usize, usize)> {
    let (d, v) = (cfg.hidden_dim, cfg.vocab_size);
    let mut m = vec![(EMBED.to_string(), v, d), (format!("{OUTPUT}linear.weight"), v, d)];
    for i in 0..cfg.n_layers {
        let b = layer_prefix(i);
        m.push((format!("{b}attn_qkv.weight"), 3 * d, d));
        m.push((format!("{b}attn_out.weight"), d, d));
        m.push((format!("{b}mlp.0.weight"), 4 * d, d));
        m.push((format!("{b}mlp.2.weight"), d, 4 * d));
    }
    m
}

impl Bd3lmWeights {
    /// Every weight in host memory as f32 (for the CPU reference; the GPU loads tensor by tensor).
    pub fn from_checkpoint(cfg: &Bd3lmConfig, ck: &Checkpoint) -> Result<Self> {
        let (d, v) = (cfg.hidden_dim, cfg.vocab_size);
        let c = conditioning(cfg, ck)?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let b = layer_prefix(i);
            let [s1, c1, g1, s2, c2, g2]: [Vec<f32>; 6] = modulation(ck, &b, 6, d, &c)?
                .try_into()
                .map_err(|_| Error::checkpoint(ck.file(), "adaLN modulation must have 6 parts"))?;
            layers.push(LayerWeights {
                norm1: ck.f32(&format!("{b}norm1.weight"), &[d])?,
                qkv: ck.f32(&format!("{b}attn_qkv.weight"), &[3 * d, d])?,
                out: ck.f32(&format!("{b}attn_out.weight"), &[d, d])?,
                norm2: ck.f32(&format!("{b}norm2.weight"), &[d])?,
                mlp0_w: ck.f32(&format!("{b}mlp.0.weight"), &[4 * d, d])?,
                mlp0_b: ck.f32(&format!("{b}mlp.0.bias"), &[4 * d])?,
                mlp2_w: ck.f32(&format!("{b}mlp.2.weight"), &[d, 4 * d])?,
                mlp2_b: ck.f32(&format!("{b}mlp.2.bias"), &[d])?,
                ada: [s1, c1, g1, s2, c2, g2],
            });
        }
        let fm = modulation(ck, OUTPUT, 2, d, &c)?;
        Ok(Bd3lmWeights {
            embed: ck.f32(EMBED, &[v, d])?,
            layers,
            final_norm: ck.f32(&format!("{OUTPUT}norm_final.weight"), &[d])?,
            final_shift: fm[0].clone(),
            final_scale: fm[1].clone(),
            head_w: ck.f32(&format!("{OUTPUT}linear.weight"), &[v, d])?,
            head_b: ck.f32(&format!("{OUTPUT}linear.bias"), &[v])?,
        })
    }
}

struct Layer {
    norm1: GpuBuffer,
    qkv: GpuMatrix,
    out: GpuMatrix,
    norm2: GpuBuffer,
    mlp0: GpuMatrix,
    mlp0_b: GpuBuffer,
    mlp2: GpuMatrix,
    mlp2_b: GpuBuffer,
    shift1: GpuBuffer,
    scale1: GpuBuffer,
    gate1: GpuBuffer,
    shift2: GpuBuffer,
    scale2: GpuBuffer,
    gate2: GpuBuffer,
}

/// BD3-LM weights on the GPU and its forward pass.
pub struct Bd3lm {
    pub config: Bd3lmConfig,
    pub dtype: DType,
    gpu: Arc<Gpu>,
    embed: GpuMatrix,
    layers: Vec<Layer>,
    final_norm: GpuBuffer,
    final_shift: GpuBuffer,
    final_scale: GpuBuffer,
    head: GpuMatrix,
    head_b: GpuBuffer,
    rope: RopeTable,
}

impl Bd3lm {
    /// Streams the weights from `ck` to the GPU, one tensor at a time.
    pub fn load(gpu: &Arc<Gpu>, config: Bd3lmConfig, ck: &Checkpoint, dtype: DType) -> Result<Self> {
        let (d, v) = (config.hidden_dim, config.vocab_size);
        let ld = Loader { gpu, ck, dtype };
        let c = conditioning(&config, ck)?;
        let vec = |name: &str, data: &[f32]| gpu.upload_f32(name, data);
        let layers = (0..config.n_layers)
            .map(|i| {
                let b = layer_prefix(i);
                let ada = modulation(ck, &b, 6, d, &c)?;
                Ok(Layer {
                    norm1: ld.vector(&format!("{b}norm1.weight"), d)?,
                    qkv: ld.matrix(&format!("{b}attn_qkv.weight"), 3 * d, d)?,
                    out: ld.matrix(&format!("{b}attn_out.weight"), d, d)?,
                    norm2: ld.vector(&format!("{b}norm2.weight"), d)?,
                    mlp0: ld.matrix(&format!("{b}mlp.0.weight"), 4 * d, d)?,
                    mlp0_b: ld.vector(&format!("{b}mlp.0.bias"), 4 * d)?,
                    mlp2: ld.matrix(&format!("{b}mlp.2.weight"), d, 4 * d)?,
                    mlp2_b: ld.vector(&format!("{b}mlp.2.bias"), d)?,
                    shift1: vec("shift1", &ada[0])?,
                    scale1: vec("scale1", &ada[1])?,
                    gate1: vec("gate1", &ada[2])?,
                    shift2: vec("shift2", &ada[3])?,
                    scale2: vec("scale2", &ada[4])?,
                    gate2: vec("gate2", &ada[5])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fm = modulation(ck, OUTPUT, 2, d, &c)?;
        Ok(Bd3lm {
            embed: ld.matrix(EMBED, v, d)?,
            layers,
            final_norm: ld.vector(&format!("{OUTPUT}norm_final.weight"), d)?,
            final_shift: vec("final shift", &fm[0])?,
            final_scale: vec("final scale", &fm[1])?,
            head: ld.matrix(&format!("{OUTPUT}linear.weight"), v, d)?,
            head_b: ld.vector(&format!("{OUTPUT}linear.bias"), v)?,
            rope: RopeTable::new(gpu, config.head_dim(), ROPE_BASE, config.model_length)?,
            config,
            dtype,
            gpu: gpu.clone(),
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        let l: u64 = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.bytes()
                    + l.out.bytes()
                    + l.mlp0.bytes()
                    + l.mlp2.bytes()
                    + [
                        &l.norm1, &l.norm2, &l.mlp0_b, &l.mlp2_b, &l.shift1, &l.scale1, &l.gate1, &l.shift2, &l.scale2,
                        &l.gate2,
                    ]
                    .iter()
                    .map(|b| b.size())
                    .sum::<u64>()
            })
            .sum();
        l + self.embed.bytes() + self.head.bytes() + self.final_norm.size() * 3 + self.head_b.size()
    }

    /// Scratch sizes per token: (residual, qkv, feed-forward).
    pub fn widths(&self) -> (usize, usize, usize) {
        let d = self.config.hidden_dim;
        (d, 3 * d, 4 * d)
    }

    /// Records the forward of the `n` tokens in `ws.ids[..n]`; the final normalised hidden states
    /// land in `ws.h`. `capture[i]` receives the residual stream after the embedding (i = 0) and
    /// after layer i.
    pub fn encode_forward(
        &self,
        rec: &mut Recorder,
        ws: &Workspace,
        n: usize,
        attn: Attn,
        capture: Option<&[GpuBuffer]>,
    ) -> Result<()> {
        let cfg = &self.config;
        let (d, heads, hd, block) = (cfg.hidden_dim, cfg.n_heads, cfg.head_dim(), cfg.block_size);
        ws.check_rows(n)?;
        let positions = match attn {
            Attn::BlockCausal => n,
            Attn::Cached(c) => c.len + n,
            Attn::Likelihood => n / 2,
        };
        if positions > self.rope.positions {
            return Err(Error::input(format!(
                "{positions} positions exceed the model's context of {} tokens",
                self.rope.positions
            )));
        }
        let copy_capture = |rec: &mut Recorder, i: usize| {
            if let Some(c) = capture.and_then(|c| c.get(i)) {
                rec.copy(ws.x.raw(), 0, c.raw(), 0, (n * d * 4) as u64);
            }
        };

        crate::kernels::embed::Embed { table: &self.embed, ids: &ws.ids, ids_offset: 0, n, out: &ws.x, out_offset: 0 }
            .encode(rec)?;
        copy_capture(rec, 0);

        for (li, l) in self.layers.iter().enumerate() {
            // h = LN(x) * w1 * (1 + scale1) + shift1
            self.norm(rec, ws, n, &l.norm1, &l.shift1, &l.scale1)?;
            // q, k, v = h W_qkv^T
            Matmul {
                x: &ws.h,
                x_offset: 0,
                x_stride: d,
                m: n,
                w: &l.qkv,
                bias: None,
                act: Activation::None,
                epi: Epilogue::Store,
                y: &ws.qkv,
                y_offset: 0,
                y_stride: 3 * d,
            }
            .encode(rec)?;
            // softmax(q k^T / sqrt(d) + mask) v, RoPE applied to q and k inside the kernel
            let qkv = |off: usize| View { buf: &ws.qkv, offset: off, stride: 3 * d };
            let out = View { buf: &ws.attn, offset: 0, stride: d };
            let mut a = Attention {
                q: qkv(0),
                k: qkv(d),
                v: qkv(2 * d),
                out,
                n_q: n,
                n_kv: n,
                heads,
                kv_heads: heads,
                head_dim: hd,
                kv_start: 0,
                kv_cap: n,
                q_base: 0,
                mask: Mask::BlockCausal { block },
                rope: Some(&self.rope),
            };
            match attn {
                Attn::BlockCausal => {}
                Attn::Likelihood => a.mask = Mask::Training { block, half_n: n / 2 },
                Attn::Cached(cache) => {
                    let (kc, vc) = &cache.layers[li];
                    KvStore {
                        k: qkv(d),
                        v: qkv(2 * d),
                        rows: n,
                        width: d,
                        k_cache: kc,
                        v_cache: vc,
                        dst_start: cache.next_slot(),
                        cap: cache.capacity,
                    }
                    .encode(rec)?;
                    let cached = |buf| View { buf, offset: 0, stride: d };
                    a.k = cached(kc);
                    a.v = cached(vc);
                    a.n_kv = cache.len + n;
                    a.kv_start = cache.start;
                    a.kv_cap = cache.capacity;
                    a.q_base = cache.len;
                }
            }
            a.encode(rec)?;
            // x = x + gate1 * attn W_out^T
            Matmul {
                x: &ws.attn,
                x_offset: 0,
                x_stride: d,
                m: n,
                w: &l.out,
                bias: None,
                act: Activation::None,
                epi: Epilogue::GatedAdd(&l.gate1),
                y: &ws.x,
                y_offset: 0,
                y_stride: d,
            }
            .encode(rec)?;
            // h = LN(x) * w2 * (1 + scale2) + shift2
            self.norm(rec, ws, n, &l.norm2, &l.shift2, &l.scale2)?;
            // x = x + gate2 * (W2 gelu_tanh(W1 h + b1) + b2)
            Matmul {
                x: &ws.h,
                x_offset: 0,
                x_stride: d,
                m: n,
                w: &l.mlp0,
                bias: Some(&l.mlp0_b),
                act: Activation::GeluTanh,
                epi: Epilogue::Store,
                y: &ws.ff,
                y_offset: 0,
                y_stride: 4 * d,
            }
            .encode(rec)?;
            Matmul {
                x: &ws.ff,
                x_offset: 0,
                x_stride: 4 * d,
                m: n,
                w: &l.mlp2,
                bias: Some(&l.mlp2_b),
                act: Activation::None,
                epi: Epilogue::GatedAdd(&l.gate2),
                y: &ws.x,
                y_offset: 0,
                y_stride: d,
            }
            .encode(rec)?;
            copy_capture(rec, li + 1);
        }
        self.norm(rec, ws, n, &self.final_norm, &self.final_shift, &self.final_scale)
    }

    fn norm(
        &self,
        rec: &mut Recorder,
        ws: &Workspace,
        n: usize,
        w: &GpuBuffer,
        shift: &GpuBuffer,
        scale: &GpuBuffer,
    ) -> Result<()> {
        let d = self.config.hidden_dim;
        Norm {
            kind: Kind::LayerNorm,
            x: &ws.x,
            x_offset: 0,
            x_stride: d,
            rows: n,
            d,
            weight: w,
            modulation: Some((shift, scale)),
            eps: LN_EPS,
            y: &ws.h,
            y_offset: 0,
            y_stride: d,
        }
        .encode(rec)
    }

    /// Records `logits[..rows] = h[row0..row0 + rows] W^T + b` into `ws.logits`.
    pub fn encode_logits(&self, rec: &mut Recorder, ws: &Workspace, row0: usize, rows: usize) -> Result<()> {
        super::encode_head(rec, ws, &self.head, Some(&self.head_b), row0, rows)
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}
