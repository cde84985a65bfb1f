//! Unmasking strategies on the GPU: which masked positions of the block to commit each step.

use super::rng;
use super::sample::Sample;
use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "select",
    wgsl: include_str!("../../shaders/select.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::ReadWrite, BindKind::ReadWrite],
};

/// Longest block the selection kernel handles.
pub const MAX_BLOCK: usize = 256;

/// How masked positions are chosen for commitment at each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// One uniformly chosen masked position per step (the BD3-LM authors' default).
    FirstHitting,
    /// Each masked position revealed with probability (t - s)/t on the log-linear schedule.
    Ddpm,
    /// Most confident first: `k` per step (0: spread evenly over the remaining steps), or every
    /// position with p >= `threshold` when it is > 0 (at least one).
    Confidence { k: u32, threshold: f32 },
    /// Lowest entropy first while the summed entropy stays within `bound` (at least one).
    EntropyBounded { bound: f32 },
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    mask_id: u32,
    strategy: u32,
    step: u32,
    steps: u32,
    seed_lo: u32,
    seed_hi: u32,
    k_fixed: u32,
    threshold: f32,
    entropy_bound: f32,
    tok_offset: u32,
    _pad: u32,
}

pub struct Select<'a> {
    pub rule: Rule,
    pub samples: &'a GpuBuffer,
    pub tokens: &'a GpuBuffer,
    pub tok_offset: usize,
    pub len: usize,
    pub mask_id: u32,
    pub step: u32,
    pub steps: u32,
    pub seed: u64,
    pub state: &'a GpuBuffer,
}

fn encode_rule(rule: Rule) -> (u32, u32, f32, f32) {
    match rule {
        Rule::FirstHitting => (0, 0, 0.0, 0.0),
        Rule::Ddpm => (1, 0, 0.0, 0.0),
        Rule::Confidence { k, threshold } => (2, k, threshold, 0.0),
        Rule::EntropyBounded { bound } => (3, 0, 0.0, bound),
    }
}

impl Select<'_> {
    pub fn encode(&self, rec: &mut Recorder) -> Result<()> {
        let (strategy, k_fixed, threshold, entropy_bound) = encode_rule(self.rule);
        let (seed_lo, seed_hi) = rng::split_seed(self.seed);
        let params = Params {
            len: self.len as u32,
            mask_id: self.mask_id,
            strategy,
            step: self.step,
            steps: self.steps,
            seed_lo,
            seed_hi,
            k_fixed,
            threshold,
            entropy_bound,
            tok_offset: self.tok_offset as u32,
            _pad: 0,
        };
        rec.dispatch(
            &SOURCE,
            "",
            bytemuck::bytes_of(&params),
            &[self.samples.raw(), self.tokens.raw(), self.state.raw()],
            [1, 1, 1],
        )
    }
}

/// CPU twin: updates `tokens` in place, returns (masked left, committed).
pub fn cpu(
    rule: Rule,
    samples: &[Sample],
    tokens: &mut [u32],
    mask_id: u32,
    step: u32,
    steps: u32,
    seed: u64,
) -> (u32, u32) {
    let mut masked: Vec<usize> = (0..tokens.len()).filter(|&i| tokens[i] == mask_id).collect();
    let n = masked.len();
    if n == 0 {
        return (0, 0);
    }
    let key = rng::select_key(seed, step);
    let steps_left = if steps > step { steps - step } else { 1 };
    let mut commit = Vec::new();
    match rule {
        Rule::FirstHitting => commit.push(masked[(rng::pcg(key) as usize) % n]),
        Rule::Ddpm => {
            let reveal = 1.0 / steps_left as f32;
            for &i in &masked {
                if steps_left == 1 || rng::unit(rng::pcg(rng::pcg(i as u32) ^ key)) < reveal {
                    commit.push(i);
                }
            }
        }
        Rule::Confidence { .. } | Rule::EntropyBounded { .. } => {
            let key_of = |i: usize| match rule {
                Rule::EntropyBounded { .. } => -samples[i].entropy,
                _ => samples[i].p_token,
            };
            // Same stable selection order as the shader.
            for a in 0..n {
                let mut best = a;
                for b in a + 1..n {
                    if key_of(masked[b]) > key_of(masked[best]) {
                        best = b;
                    }
                }
                masked.swap(a, best);
            }
            let mut take = 1;
            match rule {
                Rule::Confidence { k, threshold } => {
                    if threshold > 0.0 {
                        while take < n && samples[masked[take]].p_token >= threshold {
                            take += 1;
                        }
                    } else if k > 0 {
                        take = (k as usize).min(n);
                    } else {
                        take = n.div_ceil(steps_left as usize);
                    }
                }
                Rule::EntropyBounded { bound } => {
                    let mut total = samples[masked[0]].entropy;
                    while take < n && total + samples[masked[take]].entropy <= bound {
                        total += samples[masked[take]].entropy;
                        take += 1;
                    }
                }
                _ => {}
            }
            commit.extend_from_slice(&masked[..take]);
        }
    }
    for &i in &commit {
        tokens[i] = samples[i].token;
    }
    ((n - commit.len()) as u32, commit.len() as u32)
}
