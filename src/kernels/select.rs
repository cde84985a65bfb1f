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
    let n = tokens.iter().filter(|&&t| t == mask_id).count();
    if n == 0 {
        return (0, 0);
    }
    let key = rng::select_key(seed, step);
    let steps_left = if steps > step { steps - step } else { 1 };
    let mut done = 0;
    // The best still-masked position, ties to the lowest position (as the shader scans).
    let best = |tokens: &[u32], key_of: &dyn Fn(usize) -> f32| {
        (0..tokens.len()).filter(|&i| tokens[i] == mask_id).fold(None, |b: Option<usize>, i| match b {
            Some(j) if key_of(i) <= key_of(j) => Some(j),
            _ => Some(i),
        })
    };
    match rule {
        Rule::FirstHitting => {
            let r = rng::pcg(key) as usize % n;
            let i = (0..tokens.len()).filter(|&i| tokens[i] == mask_id).nth(r).unwrap_or(0);
            tokens[i] = samples[i].token;
            done = 1;
        }
        Rule::Ddpm => {
            let reveal = 1.0 / steps_left as f32;
            for i in 0..tokens.len() {
                if tokens[i] == mask_id && (steps_left == 1 || samples[i].draw < reveal) {
                    tokens[i] = samples[i].token;
                    done += 1;
                }
            }
        }
        Rule::Confidence { k, threshold } => {
            let take = if threshold > 0.0 {
                n
            } else if k > 0 {
                (k as usize).min(n)
            } else {
                n.div_ceil(steps_left as usize)
            };
            while let Some(b) = best(tokens, &|i| samples[i].p_token) {
                if done == take || (done > 0 && threshold > 0.0 && samples[b].p_token < threshold) {
                    break;
                }
                tokens[b] = samples[b].token;
                done += 1;
            }
        }
        Rule::EntropyBounded { bound } => {
            let mut total = 0.0;
            while let Some(b) = best(tokens, &|i| -samples[i].entropy) {
                if done > 0 && total + samples[b].entropy > bound {
                    break;
                }
                total += samples[b].entropy;
                tokens[b] = samples[b].token;
                done += 1;
            }
        }
    }
    ((n - done) as u32, done as u32)
}
