//! Generation options and their validation.

use crate::error::{Error, Result};
use crate::kernels::select::Rule;

/// How masked positions are unmasked inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One uniformly chosen masked position per step (the authors' default; NFE = tokens).
    FirstHitting,
    /// Each masked token revealed with probability (t - s)/t per step (log-linear schedule).
    Ddpm,
    /// Most confident first: `steps` per block, a fixed count per step, or a threshold.
    Confidence,
    /// Lowest entropy first while the summed entropy stays within `entropy_bound`.
    EntropyBounded,
}

impl std::str::FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "first-hitting" => Ok(Strategy::FirstHitting),
            "ddpm" => Ok(Strategy::Ddpm),
            "confidence" => Ok(Strategy::Confidence),
            "entropy-bounded" => Ok(Strategy::EntropyBounded),
            other => Err(Error::options(format!(
                "unknown strategy '{other}' (first-hitting, ddpm, confidence, entropy-bounded)"
            ))),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    pub strategy: Strategy,
    /// Denoising steps per block (ddpm, confidence); default: the block length.
    pub steps: Option<u32>,
    /// Confidence: commit every position whose probability is at least this (at least one).
    pub threshold: Option<f32>,
    /// Confidence: commit exactly this many per step.
    pub per_step: Option<u32>,
    /// Entropy-bounded: the summed entropy (nats) allowed per step.
    pub entropy_bound: f32,
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    pub max_tokens: usize,
    pub seed: u64,
    pub stop: Vec<String>,
    pub stop_at_eos: bool,
    /// Stop when the last 256 tokens' unigram entropy falls below 4 nats (the reference's guard).
    pub entropy_guard: bool,
    /// Emit an event after every denoising step (costs a read-back per step).
    pub stream_steps: bool,
    /// Use the KV cache (the default). `false` recomputes the whole prefix at every step with
    /// block-causal attention — the baseline the cache is measured against.
    pub kv_cache: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            strategy: Strategy::FirstHitting,
            steps: None,
            threshold: None,
            per_step: None,
            entropy_bound: 1.0,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: 200,
            seed: 0,
            stop: Vec::new(),
            stop_at_eos: true,
            entropy_guard: true,
            stream_steps: false,
            kv_cache: true,
        }
    }
}

impl GenerateOptions {
    pub fn validate(&self, block: usize) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(Error::options(format!("temperature must be >= 0, got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::options(format!("top_p must be in (0, 1], got {}", self.top_p)));
        }
        if let Some(s) = self.steps {
            if s == 0 || s > 4096 {
                return Err(Error::options(format!("steps must be in [1, 4096], got {s}")));
            }
        }
        if let Some(t) = self.threshold {
            if !(t > 0.0 && t <= 1.0) {
                return Err(Error::options(format!("threshold must be in (0, 1], got {t}")));
            }
        }
        if let Some(k) = self.per_step {
            if k == 0 || k as usize > block {
                return Err(Error::options(format!("per_step must be in [1, {block}], got {k}")));
            }
        }
        if !self.entropy_bound.is_finite() || self.entropy_bound <= 0.0 {
            return Err(Error::options(format!("entropy_bound must be > 0, got {}", self.entropy_bound)));
        }
        if self.max_tokens == 0 {
            return Err(Error::options("max_tokens must be at least 1"));
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return Err(Error::options("stop strings must not be empty"));
        }
        Ok(())
    }

    pub(crate) fn rule(&self) -> Rule {
        match self.strategy {
            Strategy::FirstHitting => Rule::FirstHitting,
            Strategy::Ddpm => Rule::Ddpm,
            Strategy::Confidence => {
                Rule::Confidence { k: self.per_step.unwrap_or(0), threshold: self.threshold.unwrap_or(0.0) }
            }
            Strategy::EntropyBounded => Rule::EntropyBounded { bound: self.entropy_bound },
        }
    }
}
