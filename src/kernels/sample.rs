//! Per-position sampling on the GPU (temperature, top-k, top-p, Gumbel-max); see
//! `shaders/sample.wgsl` for the exactness of the truncation.

use super::rng;
use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "sample",
    wgsl: include_str!("../../shaders/sample.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::ReadWrite],
    per_step_params: false,
};

/// The reduction snippet: subgroup operations where the device has them (native only: browsers
/// do not all take the `subgroup_id` builtin yet), workgroup-memory trees otherwise.
pub fn defines(subgroups: bool) -> &'static str {
    if subgroups {
        include_str!("../../shaders/include/reduce_subgroup.wgsl")
    } else {
        include_str!("../../shaders/include/reduce_workgroup.wgsl")
    }
}

pub fn uses_subgroups(gpu: &crate::gpu::Gpu) -> bool {
    gpu.features.subgroups && !cfg!(target_arch = "wasm32")
}

/// What the sampler reports per position (20 bytes, as in the shader).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Sample {
    pub token: u32,
    /// Probability of `token` under softmax(logits / temperature).
    pub p_token: f32,
    /// Largest probability in the row.
    pub p_max: f32,
    /// Entropy of the row (nats).
    pub entropy: f32,
    /// A uniform number in (0, 1) for the unmasking rule (DDPM's reveal decision).
    pub draw: f32,
}

/// Sampling settings for one dispatch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleSettings {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// 1 disables nucleus truncation.
    pub top_p: f32,
    /// 0 disables top-k truncation.
    pub top_k: u32,
    pub seed: u64,
    pub step: u32,
    /// Position of row 0 (so rows of different blocks draw different noise).
    pub pos_base: u32,
    /// Token never sampled (`[MASK]`); `u32::MAX` for none.
    pub mask_id: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,
    temperature: f32,
    top_p: f32,
    top_k: u32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    pos_base: u32,
    _pad: u32,
}

pub struct SampleRows<'a> {
    pub logits: &'a GpuBuffer,
    pub rows: usize,
    pub vocab: usize,
    pub stride: usize,
    pub settings: SampleSettings,
    pub out: &'a GpuBuffer,
}

impl SampleRows<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let s = self.settings;
        let (seed_lo, seed_hi) = rng::split_seed(s.seed);
        let params = Params {
            rows: self.rows as u32,
            vocab: self.vocab as u32,
            stride: self.stride as u32,
            mask_id: s.mask_id,
            temperature: s.temperature,
            top_p: s.top_p,
            top_k: s.top_k,
            seed_lo,
            seed_hi,
            step: s.step,
            pos_base: s.pos_base,
            _pad: 0,
        };
        rec.dispatch(
            &SOURCE,
            defines(uses_subgroups(rec.gpu())),
            bytemuck::bytes_of(&params),
            &[self.logits.raw(), self.out.raw()],
            [self.rows as u32, 1, 1],
        )
    }
}

/// The kept set's threshold on z by the same bisection as the shader.
fn bisect(lo: f32, hi: f32, keep: impl Fn(f32) -> bool) -> f32 {
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if keep(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// CPU twin for one row of logits at row index `row`.
pub fn cpu_row(logits: &[f32], s: &SampleSettings, row: u32) -> Sample {
    let greedy = s.temperature <= 0.0;
    let inv_t = if greedy { 1.0 } else { 1.0 / s.temperature };
    let z: Vec<Option<f32>> =
        logits.iter().enumerate().map(|(v, &l)| (v as u32 != s.mask_id).then_some(l * inv_t)).collect();
    let (mut top, mut zmax, mut zmin) = (0usize, f32::NEG_INFINITY, f32::INFINITY);
    for (v, zv) in z.iter().enumerate() {
        if let Some(zv) = *zv {
            if zv > zmax {
                zmax = zv;
                top = v;
            }
            zmin = zmin.min(zv);
        }
    }
    let (mut s0, mut s1) = (0f64, 0f64);
    for zv in z.iter().flatten() {
        let d = (zv - zmax) as f64;
        s0 += d.exp();
        s1 += d.exp() * d;
    }
    let entropy = (s0.ln() - s1 / s0).max(0.0) as f32;
    let mut tau = zmin;
    if !greedy && s.top_k > 0 && (s.top_k as usize) < logits.len() {
        tau = bisect(zmin, zmax, |t| z.iter().flatten().filter(|&&zv| zv >= t).count() as f32 >= s.top_k as f32);
    }
    if !greedy && s.top_p < 1.0 {
        let mass =
            |t: f32| -> f64 { z.iter().flatten().filter(|&&zv| zv >= t).map(|&zv| ((zv - zmax) as f64).exp()).sum() };
        let total = mass(tau);
        tau = bisect(tau, zmax, |t| mass(t) >= s.top_p as f64 * total);
    }
    let mut chosen = top;
    if !greedy {
        let key = rng::row_key(s.seed, s.step, s.pos_base.wrapping_add(row));
        let mut best = f32::NEG_INFINITY;
        for (v, zv) in z.iter().enumerate() {
            if let Some(zv) = *zv {
                if zv >= tau {
                    let u = rng::unit(rng::pcg(rng::pcg(v as u32) ^ key));
                    let g = zv - (-u.ln()).ln();
                    if g > best {
                        best = g;
                        chosen = v;
                    }
                }
            }
        }
    }
    let zc = z[chosen].unwrap_or(zmax);
    let key = rng::row_key(s.seed, s.step, s.pos_base.wrapping_add(row));
    Sample {
        draw: rng::unit(rng::pcg(key ^ 0x68bc_21eb)),
        token: chosen as u32,
        p_token: (((zc - zmax) as f64).exp() / s0) as f32,
        p_max: (1.0 / s0) as f32,
        entropy,
    }
}
