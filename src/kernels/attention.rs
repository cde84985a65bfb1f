//! Block-masked attention with an online softmax; see `shaders/attention.wgsl` for the masks.

use super::elementwise::View;
use super::rope::RopeTable;
use crate::error::{Error, Result};
use crate::gpu::{BindKind, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "attention",
    wgsl: include_str!("../../shaders/attention.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::Read, BindKind::ReadWrite],
    per_step_params: true,
};

/// Longest supported head dimension.
pub const MAX_HEAD_DIM: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Key block <= query block (also the KV-cached block step: cache + own block).
    BlockCausal { block: usize },
    /// The training mask over `x_t ⊕ x_0`, each half `half_n` tokens long.
    Training { block: usize, half_n: usize },
}

impl Mask {
    /// Whether query `qa` may attend to key `j` (indices in one sequence).
    pub fn allowed(self, qa: usize, j: usize) -> bool {
        match self {
            Mask::BlockCausal { block } => j / block <= qa / block,
            Mask::Training { block, half_n: n } => {
                let (qb, kb) = ((qa % n) / block, (j % n) / block);
                match (qa >= n, j >= n) {
                    (true, true) => kb <= qb,
                    (true, false) => false,
                    (false, true) => kb < qb,
                    (false, false) => kb == qb,
                }
            }
        }
    }

    /// RoPE position of sequence index `idx` (both halves of the training input share 0..n).
    pub fn position(self, idx: usize) -> usize {
        match self {
            Mask::BlockCausal { .. } => idx,
            Mask::Training { half_n, .. } => idx % half_n,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_q: u32,
    n_kv: u32,
    heads: u32,
    kv_heads: u32,
    q_stride: u32,
    q_offset: u32,
    k_stride: u32,
    k_offset: u32,
    v_stride: u32,
    v_offset: u32,
    o_stride: u32,
    o_offset: u32,
    kv_start: u32,
    kv_cap: u32,
    q_base: u32,
    mode: u32,
    block: u32,
    half_n: u32,
    rope: u32,
    scale: f32,
}

pub fn defines(head_dim: usize, qt: usize, kc: usize) -> String {
    format!("const HEAD_DIM: u32 = {head_dim}u;\nconst QT: u32 = {qt}u;\nconst KC: u32 = {kc}u;")
}

/// Largest (query tile, key chunk) whose workgroup arrays fit in `limit` bytes.
pub fn tile_sizes(head_dim: usize, limit: u32) -> Result<(usize, usize)> {
    const CANDIDATES: [(usize, usize); 11] =
        [(16, 32), (16, 16), (8, 16), (16, 8), (8, 8), (4, 8), (4, 4), (2, 4), (1, 4), (1, 2), (1, 1)];
    CANDIDATES
        .iter()
        .copied()
        .find(|&(qt, kc)| ((qt * head_dim + 2 * kc * head_dim + qt * kc + 3 * qt) * 4) as u32 <= limit)
        .ok_or_else(|| Error::Limit {
            adapter: "attention".into(),
            limit: "max_compute_workgroup_storage_size",
            needed: ((3 * head_dim + 4) * 4) as u64,
            available: limit as u64,
        })
}

/// Attention of `n_q` queries (sequence indices `q_base..`) over keys `0..n_kv`, where key `j`
/// sits in ring slot `(kv_start + j) % kv_cap` of `k` and `v`.
pub struct Attention<'a> {
    pub q: View<'a>,
    pub k: View<'a>,
    pub v: View<'a>,
    pub out: View<'a>,
    pub n_q: usize,
    pub n_kv: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub kv_start: usize,
    pub kv_cap: usize,
    pub q_base: usize,
    pub mask: Mask,
    /// Rotate q and k on the fly (keys held pre-RoPE).
    pub rope: Option<&'a RopeTable>,
}

impl Attention<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        if self.head_dim > MAX_HEAD_DIM || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::config(format!(
                "attention with head_dim {} and {}:{} heads is not supported",
                self.head_dim, self.heads, self.kv_heads
            )));
        }
        let (qt, kc) = tile_sizes(self.head_dim, rec.gpu().workgroup_storage())?;
        let (mode, block, half_n) = match self.mask {
            Mask::BlockCausal { block } => (0, block, 0),
            Mask::Training { block, half_n } => (1, block, half_n),
        };
        let params = Params {
            n_q: self.n_q as u32,
            n_kv: self.n_kv as u32,
            heads: self.heads as u32,
            kv_heads: self.kv_heads as u32,
            q_stride: self.q.stride as u32,
            q_offset: self.q.offset as u32,
            k_stride: self.k.stride as u32,
            k_offset: self.k.offset as u32,
            v_stride: self.v.stride as u32,
            v_offset: self.v.offset as u32,
            o_stride: self.out.stride as u32,
            o_offset: self.out.offset as u32,
            kv_start: self.kv_start as u32,
            kv_cap: self.kv_cap.max(1) as u32,
            q_base: self.q_base as u32,
            mode,
            block: block as u32,
            half_n: half_n.max(1) as u32,
            rope: self.rope.is_some() as u32,
            scale: 1.0 / (self.head_dim as f32).sqrt(),
        };
        let dummy = rec.gpu().dummy().clone();
        rec.dispatch(
            &SOURCE,
            &defines(self.head_dim, qt, kc),
            bytemuck::bytes_of(&params),
            &[
                self.q.buf.raw(),
                self.k.buf.raw(),
                self.v.buf.raw(),
                self.rope.map_or(&dummy, |r| r.buf.raw()),
                self.out.buf.raw(),
            ],
            [self.n_q.div_ceil(qt) as u32, self.heads as u32, 1],
        )
    }
}

/// CPU twin over contiguous inputs: `q` is `[n_q, heads * d]`, `k`/`v` are `[n_kv, kv_heads * d]`
/// in sequence order; returns `[n_q, heads * d]`. With `rope`, q and k are rotated first.
#[allow(clippy::too_many_arguments)]
pub fn cpu(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_q: usize,
    n_kv: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    q_base: usize,
    mask: Mask,
    rope: Option<&[f32]>,
) -> Vec<f32> {
    let mut q = q.to_vec();
    let mut k = k.to_vec();
    if let Some(table) = rope {
        for i in 0..n_q {
            let pos = mask.position(q_base + i);
            super::rope::cpu_row(table, d, &mut q[i * heads * d..(i + 1) * heads * d], heads, pos);
        }
        for j in 0..n_kv {
            let pos = mask.position(j);
            super::rope::cpu_row(table, d, &mut k[j * kv_heads * d..(j + 1) * kv_heads * d], kv_heads, pos);
        }
    }
    let scale = 1.0 / (d as f32).sqrt();
    let group = heads / kv_heads;
    let mut out = vec![0.0; n_q * heads * d];
    for i in 0..n_q {
        for h in 0..heads {
            let kvh = h / group;
            let qv = &q[(i * heads + h) * d..(i * heads + h + 1) * d];
            let scores: Vec<Option<f32>> = (0..n_kv)
                .map(|j| {
                    mask.allowed(q_base + i, j).then(|| {
                        let kv = &k[(j * kv_heads + kvh) * d..(j * kv_heads + kvh + 1) * d];
                        qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f32>() * scale
                    })
                })
                .collect();
            let mx = scores.iter().flatten().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut denom = 0.0f64;
            let o = &mut out[(i * heads + h) * d..(i * heads + h + 1) * d];
            for (j, s) in scores.iter().enumerate() {
                if let Some(s) = s {
                    let p = ((s - mx) as f64).exp();
                    denom += p;
                    let vv = &v[(j * kv_heads + kvh) * d..(j * kv_heads + kvh + 1) * d];
                    for (oo, &x) in o.iter_mut().zip(vv) {
                        *oo += (p * x as f64) as f32;
                    }
                }
            }
            if denom > 0.0 {
                for oo in o.iter_mut() {
                    *oo = (*oo as f64 / denom) as f32;
                }
            }
        }
    }
    out
}
