//! Unmasking strategies on the GPU: which masked positions of the block to commit each step.

use super::rng;
use super::sample::Sample;
use crate::error::Result;
use crate::gpu::{BindKind, GpuBuffer, KernelSource, Recorder};

pub const SOURCE: KernelSource = KernelSource {
    name: "select",
    wgsl: include_str!("../../shaders/select.wgsl"),
    bindings: &[BindKind::Uniform, BindKind::Read, BindKind::ReadWrite, BindKind::ReadWrite],
    per_step_params: true,
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

/// CPU twin: updates `tokens` in place, returns (masked left, committed). Mirrors the shader:
/// every masked position decides from its own rank (ties to the lower position).
pub fn cpu(
    rule: Rule,
    samples: &[Sample],
    tokens: &mut [u32],
    mask_id: u32,
    step: u32,
    steps: u32,
    seed: u64,
) -> (u32, u32) {
    let masked: Vec<bool> = tokens.iter().map(|&t| t == mask_id).collect();
    let n = masked.iter().filter(|&&m| m).count();
    if n == 0 {
        return (0, 0);
    }
    let steps_left = if steps > step { steps - step } else { 1 };
    let key =
        |i: usize| if matches!(rule, Rule::EntropyBounded { .. }) { -samples[i].entropy } else { samples[i].p_token };
    let before = |j: usize, i: usize| key(j) > key(i) || (key(j) == key(i) && j < i);
    let rank_of = |i: usize| {
        let (mut rank, mut ahead) = (0usize, 0.0f32);
        for j in (0..tokens.len()).filter(|&j| masked[j] && before(j, i)) {
            rank += 1;
            ahead -= key(j);
        }
        (rank, ahead)
    };
    let r = rng::pcg(rng::select_key(seed, step)) as usize % n;
    let take = |i: usize| match rule {
        Rule::FirstHitting => masked[..i].iter().filter(|&&m| m).count() == r,
        Rule::Ddpm => steps_left == 1 || samples[i].draw < 1.0 / steps_left as f32,
        Rule::Confidence { k, threshold } => {
            let (rank, _) = rank_of(i);
            if threshold > 0.0 {
                rank == 0 || samples[i].p_token >= threshold
            } else if k > 0 {
                rank < (k as usize).min(n)
            } else {
                rank < n.div_ceil(steps_left as usize)
            }
        }
        Rule::EntropyBounded { bound } => {
            let (rank, ahead) = rank_of(i);
            rank == 0 || ahead + samples[i].entropy <= bound
        }
    };
    let chosen: Vec<usize> = (0..tokens.len()).filter(|&i| masked[i] && take(i)).collect();
    for &i in &chosen {
        tokens[i] = samples[i].token;
    }
    ((n - chosen.len()) as u32, chosen.len() as u32)
}
