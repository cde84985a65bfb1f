//! The CPU reference forward: the same network as the GPU path, built from the kernels' CPU
//! twins in plain f32 Rust. Tests and `blockdiff verify` compare both against the authors'
//! outputs.

use super::bd3lm::Bd3lmWeights;
use super::config::Bd3lmConfig;
use crate::kernels::attention::{self, Mask};
use crate::kernels::matmul::{self, Activation};
use crate::kernels::norm::{self, Kind};
use crate::kernels::rope;

/// Which attention the reference runs.
pub enum CpuAttn<'a> {
    BlockCausal,
    /// Against `cache`; with `commit` the block's pre-RoPE keys/values are appended.
    Cached {
        cache: &'a mut CpuCache,
        commit: bool,
    },
    Likelihood,
}

/// Per-layer pre-RoPE keys and values of the live window, in sequence order.
#[derive(Default, Clone)]
pub struct CpuCache {
    pub k: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    pub len: usize,
}

pub struct Bd3lmReference {
    pub cfg: Bd3lmConfig,
    pub w: Bd3lmWeights,
    table: Vec<f32>,
}

/// Output of a reference forward.
pub struct CpuForward {
    /// Residual stream after the embedding and after each layer.
    pub hidden: Vec<Vec<f32>>,
    /// Final normalised hidden states `[n, d]`.
    pub h: Vec<f32>,
}

impl Bd3lmReference {
    pub fn new(cfg: Bd3lmConfig, w: Bd3lmWeights) -> Self {
        let table = rope::table(cfg.head_dim(), 10000.0, cfg.model_length.max(1));
        Bd3lmReference { cfg, w, table }
    }

    pub fn new_cache(&self) -> CpuCache {
        CpuCache { k: vec![Vec::new(); self.cfg.n_layers], v: vec![Vec::new(); self.cfg.n_layers], len: 0 }
    }

    fn ln(&self, x: &[f32], w: &[f32], shift: &[f32], scale: &[f32]) -> Vec<f32> {
        norm::cpu(Kind::LayerNorm, x, self.cfg.hidden_dim, w, Some((shift, scale)), 1e-5)
    }

    pub fn forward(&self, ids: &[u32], mut attn: CpuAttn) -> CpuForward {
        let c = &self.cfg;
        let (d, heads, hd, block, n) = (c.hidden_dim, c.n_heads, c.head_dim(), c.block_size, ids.len());
        let mut x = crate::kernels::embed::cpu(&self.w.embed, d, ids);
        let mut hidden = vec![x.clone()];
        for (li, l) in self.w.layers.iter().enumerate() {
            let h = self.ln(&x, &l.norm1, &l.ada[0], &l.ada[1]);
            let mut qkv = vec![0.0; n * 3 * d];
            matmul::cpu(&h, d, n, &l.qkv, 3 * d, d, None, Activation::None, 0, None, &mut qkv, 3 * d);
            let part =
                |j: usize| -> Vec<f32> { qkv.chunks(3 * d).flat_map(|r| r[j * d..(j + 1) * d].to_vec()).collect() };
            let (q, k, v) = (part(0), part(1), part(2));
            let a = match &mut attn {
                CpuAttn::BlockCausal | CpuAttn::Likelihood => {
                    let mask = match attn {
                        CpuAttn::Likelihood => Mask::Training { block, half_n: n / 2 },
                        _ => Mask::BlockCausal { block },
                    };
                    attention::cpu(&q, &k, &v, n, n, heads, heads, hd, 0, mask, Some(&self.table))
                }
                CpuAttn::Cached { cache, commit } => {
                    let s = cache.len;
                    let k_all = [cache.k[li].as_slice(), &k].concat();
                    let v_all = [cache.v[li].as_slice(), &v].concat();
                    if *commit {
                        cache.k[li] = k_all.clone();
                        cache.v[li] = v_all.clone();
                    }
                    attention::cpu(
                        &q,
                        &k_all,
                        &v_all,
                        n,
                        s + n,
                        heads,
                        heads,
                        hd,
                        s,
                        Mask::BlockCausal { block },
                        Some(&self.table),
                    )
                }
            };
            matmul::cpu(&a, d, n, &l.out, d, d, None, Activation::None, 1, Some(&l.ada[2]), &mut x, d);
            let h = self.ln(&x, &l.norm2, &l.ada[3], &l.ada[4]);
            let mut ff = vec![0.0; n * 4 * d];
            matmul::cpu(&h, d, n, &l.mlp0_w, 4 * d, d, Some(&l.mlp0_b), Activation::GeluTanh, 0, None, &mut ff, 4 * d);
            matmul::cpu(
                &ff,
                4 * d,
                n,
                &l.mlp2_w,
                d,
                4 * d,
                Some(&l.mlp2_b),
                Activation::None,
                1,
                Some(&l.ada[5]),
                &mut x,
                d,
            );
            hidden.push(x.clone());
        }
        if let CpuAttn::Cached { cache, commit: true } = attn {
            cache.len += n;
            // Slide the window exactly like the GPU cache: drop whole blocks from the front.
            while cache.len >= c.model_length {
                for layer in cache.k.iter_mut().chain(cache.v.iter_mut()) {
                    layer.drain(..block * d);
                }
                cache.len -= block;
            }
        }
        let h = self.ln(&x, &self.w.final_norm, &self.w.final_shift, &self.w.final_scale);
        CpuForward { hidden, h }
    }

    /// Logits `[rows, vocab]` for rows of final hidden states.
    pub fn logits(&self, h: &[f32]) -> Vec<f32> {
        let (d, v) = (self.cfg.hidden_dim, self.cfg.vocab_size);
        let rows = h.len() / d;
        let mut out = vec![0.0; rows * v];
        matmul::cpu(h, d, rows, &self.w.head_w, v, d, Some(&self.w.head_b), Activation::None, 0, None, &mut out, v);
        out
    }
}

/// The CPU reference of the SDAR (Qwen3) network. Its cache keeps post-RoPE keys at absolute
/// positions (no window).
pub struct SdarReference {
    pub cfg: super::SdarConfig,
    pub w: super::sdar::SdarWeights,
    table: Vec<f32>,
}

impl SdarReference {
    pub fn new(cfg: super::SdarConfig, w: super::sdar::SdarWeights, context: usize) -> Self {
        let table = rope::table(cfg.head_dim, cfg.rope_theta, context.max(1));
        SdarReference { cfg, w, table }
    }

    pub fn new_cache(&self) -> CpuCache {
        CpuCache { k: vec![Vec::new(); self.cfg.n_layers], v: vec![Vec::new(); self.cfg.n_layers], len: 0 }
    }

    fn rms(&self, x: &[f32], d: usize, w: &[f32]) -> Vec<f32> {
        norm::cpu(Kind::RmsNorm, x, d, w, None, self.cfg.rms_norm_eps)
    }

    /// Hidden states: the embedding, each layer's output but the last, then the final norm's
    /// output (the Hugging Face convention the golden files follow).
    pub fn forward(&self, ids: &[u32], mut attn: CpuAttn) -> CpuForward {
        let c = &self.cfg;
        let (d, hd, h, kvh, inter, n) =
            (c.hidden_size, c.head_dim, c.n_heads, c.n_kv_heads, c.intermediate_size, ids.len());
        let (qw, kw) = (h * hd, kvh * hd);
        let pos0 = match &attn {
            CpuAttn::Cached { cache, .. } => cache.len,
            _ => 0,
        };
        let mut x = crate::kernels::embed::cpu(&self.w.embed, d, ids);
        let mut hidden = vec![x.clone()];
        let proj = |x: &[f32], k: usize, w: &[f32], n_out: usize| {
            let mut y = vec![0.0; n * n_out];
            matmul::cpu(x, k, n, w, n_out, k, None, Activation::None, 0, None, &mut y, n_out);
            y
        };
        for (li, l) in self.w.layers.iter().enumerate() {
            let hn = self.rms(&x, d, &l.input_norm);
            let mut q = self.rms(&proj(&hn, d, &l.q, qw), hd, &l.q_norm);
            let mut k = self.rms(&proj(&hn, d, &l.k, kw), hd, &l.k_norm);
            let v = proj(&hn, d, &l.v, kw);
            for t in 0..n {
                rope::cpu_row(&self.table, hd, &mut q[t * qw..(t + 1) * qw], h, pos0 + t);
                rope::cpu_row(&self.table, hd, &mut k[t * kw..(t + 1) * kw], kvh, pos0 + t);
            }
            let mask = Mask::BlockCausal { block: c.block_size };
            let a = match &mut attn {
                CpuAttn::Cached { cache, commit } => {
                    let k_all = [cache.k[li].as_slice(), &k].concat();
                    let v_all = [cache.v[li].as_slice(), &v].concat();
                    let s = cache.len;
                    if *commit {
                        cache.k[li] = k_all.clone();
                        cache.v[li] = v_all.clone();
                    }
                    attention::cpu(&q, &k_all, &v_all, n, s + n, h, kvh, hd, s, mask, None)
                }
                _ => attention::cpu(&q, &k, &v, n, n, h, kvh, hd, 0, mask, None),
            };
            matmul::cpu(&a, qw, n, &l.o, d, qw, None, Activation::None, 2, None, &mut x, d);
            let hn = self.rms(&x, d, &l.post_norm);
            let gu = proj(&hn, d, &l.gate_up, 2 * inter);
            let act: Vec<f32> = (0..n * inter)
                .map(|e| {
                    let (t, j) = (e / inter, e % inter);
                    crate::kernels::elementwise::silu(gu[t * 2 * inter + j]) * gu[t * 2 * inter + inter + j]
                })
                .collect();
            matmul::cpu(&act, inter, n, &l.down, d, inter, None, Activation::None, 2, None, &mut x, d);
            if li + 1 < self.w.layers.len() {
                hidden.push(x.clone());
            }
        }
        if let CpuAttn::Cached { cache, commit: true } = attn {
            cache.len += n;
        }
        let hfin = self.rms(&x, d, &self.w.norm);
        hidden.push(hfin.clone());
        CpuForward { hidden, h: hfin }
    }

    pub fn logits(&self, h: &[f32]) -> Vec<f32> {
        let (d, v) = (self.cfg.hidden_size, self.cfg.vocab_size);
        let rows = h.len() / d;
        let w = self.w.lm_head.as_ref().unwrap_or(&self.w.embed);
        let mut out = vec![0.0; rows * v];
        matmul::cpu(h, d, rows, w, v, d, None, Activation::None, 0, None, &mut out, v);
        out
    }
}
