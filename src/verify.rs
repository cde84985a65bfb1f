//! Golden parity: runs a model directory's golden entries (outputs of the authors' reference
//! implementation, see `golden.json`) through the GPU path and the CPU reference, and reports
//! the max abs error of each.

use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu};
use crate::kernels::logprob;
use crate::model::reference::{Bd3lmReference, CpuAttn, CpuCache, CpuForward, SdarReference};
use crate::model::{bd3lm::Bd3lmWeights, sdar::SdarWeights, Architecture, Attn, Bd3lmConfig, Checkpoint};
use crate::model::{LoadOptions, Model, ModelFiles, SdarConfig};
use std::sync::Arc;

/// One comparison.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub entry: String,
    /// "gpu-f32", "gpu-f16" or "cpu".
    pub path: String,
    pub max_abs_err: f32,
    pub tolerance: f32,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.max_abs_err <= self.tolerance
    }
}

#[derive(Default, Debug, serde::Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed()).count()
    }
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }
}

/// Tolerance on logits and hidden states: 1e-4 for f32 (the bound; the reference itself
/// differs from its own no-cache path by ~2e-6). f16 weights keep 11 significant bits, so each
/// matmul output carries a relative error of ~2^-11 · sqrt(k); through a few layers that is about
/// a few 1e-3 of the values' scale; the f16 tolerance allows 5e-3 of it.
fn tolerance(path: &str, reference: &[f32]) -> f32 {
    if path == "gpu-f16" {
        let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
        5e-3 * scale.max(1.0)
    } else {
        1e-4
    }
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

struct Golden<'a> {
    ck: Checkpoint<'a>,
}

impl Golden<'_> {
    fn f32(&self, name: &str) -> Result<Vec<f32>> {
        let shape = self.ck.shape(name)?;
        self.ck.f32(name, &shape)
    }
    fn has(&self, name: &str) -> bool {
        self.ck.contains(name)
    }
}

/// The NLL bound of the likelihood entry from `x_t`-half logits: mean over positions 1..n-1 of
/// (1/t)·CE on masked positions ([MASK] excluded from the softmax).
pub fn likelihood_nll(logits: &[f32], vocab: usize, xt: &[u32], x0: &[u32], mask_id: u32, t: f32) -> f32 {
    let n = xt.len();
    let total: f64 = (1..n)
        .filter(|&i| xt[i] == mask_id)
        .map(|i| logprob::cpu_row(&logits[i * vocab..(i + 1) * vocab], mask_id, x0[i]) as f64 / t as f64)
        .sum();
    (total / (n - 1) as f64) as f32
}

/// The CPU reference of either architecture.
enum Reference {
    Bd3lm(Box<Bd3lmReference>),
    Sdar(Box<SdarReference>),
}

impl Reference {
    fn load(files: &ModelFiles, arch: Architecture, context: usize) -> Result<Self> {
        let ck = files.checkpoint()?;
        Ok(match arch {
            Architecture::Bd3lm => {
                let cfg = Bd3lmConfig::from_json(&files.config)?;
                let w = Bd3lmWeights::from_checkpoint(&cfg, &ck)?;
                Reference::Bd3lm(Box::new(Bd3lmReference::new(cfg, w)))
            }
            Architecture::Sdar => {
                let cfg = SdarConfig::from_json(&files.config)?;
                let w = SdarWeights::from_checkpoint(&cfg, &ck)?;
                Reference::Sdar(Box::new(SdarReference::new(cfg, w, context)))
            }
        })
    }
    fn forward(&self, ids: &[u32], attn: CpuAttn) -> CpuForward {
        match self {
            Reference::Bd3lm(r) => r.forward(ids, attn),
            Reference::Sdar(r) => r.forward(ids, attn),
        }
    }
    fn logits(&self, h: &[f32]) -> Vec<f32> {
        match self {
            Reference::Bd3lm(r) => r.logits(h),
            Reference::Sdar(r) => r.logits(h),
        }
    }
    fn new_cache(&self) -> CpuCache {
        match self {
            Reference::Bd3lm(r) => r.new_cache(),
            Reference::Sdar(r) => r.new_cache(),
        }
    }
}

/// Runs every golden entry found in `golden_bytes` on the GPU at `dtype` and, if `cpu`, on the CPU
/// reference.
pub async fn verify(
    gpu: &Arc<Gpu>,
    files: &ModelFiles,
    golden_bytes: &[u8],
    dtype: DType,
    cpu: bool,
) -> Result<Report> {
    let golden = Golden { ck: Checkpoint::parse("golden.safetensors", golden_bytes)? };
    let model = Model::load(gpu, files, &LoadOptions { dtype: Some(dtype), context: None })?;
    let info = model.info();
    let reference = cpu.then(|| Reference::load(files, info.architecture, info.context)).transpose()?;
    let (v, block, mask) = (info.vocab_size, info.block_size, info.mask_id);
    let gpu_path = format!("gpu-{dtype}");
    let mut report = Report::default();
    let mut push = |entry: String, path: &str, got: &[f32], want: &[f32]| {
        report.checks.push(Check {
            entry,
            path: path.to_string(),
            max_abs_err: max_err(got, want),
            tolerance: tolerance(path, want),
        })
    };

    // Block-causal over the whole input, with every hidden state.
    if golden.has("block_causal.input_ids") {
        let ids = golden.ck.ids("block_causal.input_ids")?;
        let n = ids.len();
        let ws = model.workspace(n.max(block))?;
        let (logits, hidden) = model.forward_logits(&ws, &ids, Attn::BlockCausal, 0..n, true).await?;
        let want = golden.f32("block_causal.logits")?;
        push("block_causal.logits".into(), &gpu_path, &logits, &want);
        let cpu_out = reference.as_ref().map(|r| r.forward(&ids, CpuAttn::BlockCausal));
        if let (Some(r), Some(out)) = (&reference, &cpu_out) {
            push("block_causal.logits".into(), "cpu", &r.logits(&out.h), &want);
        }
        for (i, h) in hidden.iter().enumerate() {
            let name = format!("block_causal.hidden.{i}");
            if golden.has(&name) {
                let want = golden.f32(&name)?;
                push(name.clone(), &gpu_path, h, &want);
                if let Some(out) = &cpu_out {
                    push(name, "cpu", &out.hidden[i], &want);
                }
            }
        }
    }

    // Through the KV cache: either every block in turn (`kv.{noisy,commit}_logits.{b}`, past the
    // window when long enough) or a prefill of all blocks but the last in one pass followed by
    // the last block noisy, then committed (`kv.{noisy,commit}_logits`).
    if golden.has("kv.clean_ids") {
        let clean = golden.ck.ids("kv.clean_ids")?;
        let noisy = golden.ck.ids("kv.noisy_ids")?;
        let blocks = clean.len() / block;
        let per_block = golden.has("kv.noisy_logits.0");
        let ws = model.workspace(clean.len().max(block))?;
        let mut cache = model.new_cache()?;
        let mut cpu_cache = reference.as_ref().map(|r| r.new_cache());
        let first = if per_block { 0 } else { blocks.saturating_sub(1) };
        if first > 0 {
            let prefix = &clean[..first * block];
            model.forward_logits(&ws, prefix, Attn::Cached(&cache), 0..0, false).await?;
            cache.commit(prefix.len());
            if let (Some(r), Some(cc)) = (&reference, cpu_cache.as_mut()) {
                r.forward(prefix, CpuAttn::Cached { cache: cc, commit: true });
            }
        }
        for b in first..blocks {
            let (noisy_b, clean_b) = (&noisy[b * block..(b + 1) * block], &clean[b * block..(b + 1) * block]);
            for (kind, ids, commit) in [("noisy", noisy_b, false), ("commit", clean_b, true)] {
                let name = if per_block { format!("kv.{kind}_logits.{b}") } else { format!("kv.{kind}_logits") };
                let (logits, _) = model.forward_logits(&ws, ids, Attn::Cached(&cache), 0..block, false).await?;
                if commit {
                    cache.commit(block);
                }
                if !golden.has(&name) {
                    continue;
                }
                let want = golden.f32(&name)?;
                push(name.clone(), &gpu_path, &logits, &want);
                if let (Some(r), Some(cc)) = (&reference, cpu_cache.as_mut()) {
                    let out = r.forward(ids, CpuAttn::Cached { cache: cc, commit });
                    push(name, "cpu", &r.logits(&out.h), &want);
                }
            }
        }
    }

    // The likelihood (training-mask) path and its NLL.
    if golden.has("train.xt") {
        let xt = golden.ck.ids("train.xt")?;
        let x0 = golden.ck.ids("train.x0")?;
        let t = golden.f32("train.t")?.first().copied().unwrap_or(1.0);
        let n = xt.len();
        if x0.len() != n {
            return Err(Error::input("train.xt and train.x0 differ in length"));
        }
        let ids = [xt.as_slice(), x0.as_slice()].concat();
        let ws = model.workspace(2 * n)?;
        let (logits, _) = model.forward_logits(&ws, &ids, Attn::Likelihood, 0..n, false).await?;
        let want = golden.f32("train.logits")?;
        push("train.logits".into(), &gpu_path, &logits, &want);
        let want_nll = golden.f32("train.nll")?;
        let nll = likelihood_nll(&logits, v, &xt, &x0, mask, t);
        push("train.nll".into(), &gpu_path, &[nll], &want_nll);
        if let Some(r) = &reference {
            let out = r.forward(&ids, CpuAttn::Likelihood);
            let l = r.logits(&out.h[..n * info.hidden]);
            push("train.logits".into(), "cpu", &l, &want);
            push("train.nll".into(), "cpu", &[likelihood_nll(&l, v, &xt, &x0, mask, t)], &want_nll);
        }
    }
    if report.checks.is_empty() {
        return Err(Error::input("the golden file holds no known entries"));
    }
    Ok(report)
}
