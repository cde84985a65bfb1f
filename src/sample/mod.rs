//! Block diffusion generation (the paper's Algorithm 2) on the GPU.
//!
//! The prompt's whole blocks are committed to the KV cache with one forward each; a partial last
//! prompt block is completed with `[MASK]` and denoised with the prompt tokens fixed. Each new
//! block starts all `[MASK]`; every denoising step runs the block against the cache, samples
//! every position on the GPU and lets the unmasking rule commit some masked positions, writing
//! their tokens into the block that the next step reads. Only the block's token ids (and two
//! counters) come back to the host; logits never do. A finished block goes through the model once
//! more to store its keys and values. When the step count is fixed in advance and no step events
//! are wanted, the whole block (all steps, the commit forward and the read-back copy) is one
//! submission.

mod options;
pub use options::{GenerateOptions, Strategy};

use crate::cache::KvCache;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
use crate::kernels::sample::{SampleRows, SampleSettings};
use crate::kernels::select::{Rule, Select};
use crate::model::{Attn, Model, Workspace};
use crate::tokenizer::Tokenizer;
use std::sync::Arc;

/// Streamed while generating. Returning `false` from the callback cancels the generation.
#[derive(Debug)]
pub enum Event<'a> {
    /// A denoising step finished; `tokens` is the current block (masked positions hold `mask_id`).
    Step { block: usize, step: u32, tokens: &'a [u32], mask_id: u32, masked: usize },
    /// A block was committed; `text` is the newly decoded text.
    Block { block: usize, tokens: &'a [u32], text: &'a str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    StopString,
    LowEntropy,
    Cancelled,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub blocks: usize,
    /// Denoising forward passes (the diffusion NFE).
    pub nfe: usize,
    /// Forwards that stored a block in the cache (prompt blocks and finished blocks).
    pub commit_forwards: usize,
    pub elapsed_ms: f64,
    pub tokens_per_second: f64,
    /// Generated tokens per denoising forward.
    pub tokens_per_forward: f64,
    /// Prompt tokens whose keys/values were already cached (earlier chat turns): not recomputed.
    pub reused_tokens: usize,
    /// Prompt tokens run through the model.
    pub prefill_tokens: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// The end-of-sequence token that stopped generation (not part of `tokens`).
    pub eos_token: Option<u32>,
    pub stats: Stats,
}

/// The GPU buffers of the block loop, allocated once per session.
pub struct BlockBuffers {
    pub ws: Workspace,
    samples: GpuBuffer,
    state: GpuBuffer,
    staging: wgpu::Buffer,
    block: usize,
}

impl BlockBuffers {
    /// Buffers for cached generation (one block per forward).
    pub fn new(model: &Model) -> Result<Self> {
        Self::with_rows(model, model.info().block_size)
    }

    /// Buffers whose workspace holds `rows` tokens (recompute mode needs the whole context).
    pub fn with_rows(model: &Model, rows: usize) -> Result<Self> {
        let gpu = model.gpu();
        let block = model.info().block_size;
        let ws = model.workspace(rows)?;
        if ws.logits_rows < block {
            return Err(Error::Limit {
                adapter: gpu.adapter.name.clone(),
                limit: "max_storage_buffer_binding_size (logits of one block)",
                needed: (block * model.info().vocab_size * 4) as u64,
                available: gpu.max_storage_binding(),
            });
        }
        Ok(BlockBuffers {
            ws,
            samples: gpu.storage("samples", (block * std::mem::size_of::<crate::kernels::sample::Sample>()) as u64)?,
            state: gpu.storage("select state", 8)?,
            staging: gpu.staging(((block + 2) * 4) as u64),
            block,
        })
    }

    fn staging_bytes(&self) -> u64 {
        ((self.block + 2) * 4) as u64
    }
}

/// Sampler settings of one denoising step (`committed` = tokens committed before the block), so
/// a CPU twin of the loop draws the same noise.
pub fn sample_settings(
    opts: &GenerateOptions,
    mask_id: u32,
    block_index: usize,
    step: u32,
    committed: usize,
) -> SampleSettings {
    SampleSettings {
        temperature: opts.temperature,
        top_p: opts.top_p,
        top_k: opts.top_k,
        seed: opts.seed,
        step: (block_index as u32).wrapping_mul(65_537).wrapping_add(step),
        pos_base: committed as u32,
        mask_id,
    }
}

/// Seed of the unmasking decisions of one block.
pub fn select_seed(seed: u64, block_index: usize) -> u64 {
    seed ^ (block_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The unigram entropy (nats) of `tokens`.
pub fn unigram_entropy(tokens: &[u32]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for &t in tokens {
        *counts.entry(t).or_insert(0usize) += 1;
    }
    let n = tokens.len() as f64;
    counts.values().map(|&c| -(c as f64 / n) * (c as f64 / n).ln()).sum()
}

/// The reference's degenerate-output guard: stop when the last 256 tokens' unigram entropy < 4.
const GUARD_WINDOW: usize = 256;
const GUARD_ENTROPY: f64 = 4.0;

struct Loop<'a> {
    model: &'a Model,
    gpu: Arc<Gpu>,
    cache: &'a mut KvCache,
    buf: &'a BlockBuffers,
    opts: &'a GenerateOptions,
    rule: Rule,
    steps: u32,
    mask_id: u32,
    vocab: usize,
    stats: Stats,
    /// Recompute mode: the committed tokens the cache would hold, re-run at every step.
    prefix: Option<Vec<u32>>,
    context: usize,
}

impl Loop<'_> {
    /// Where the block sits in `ws.ids` (after the prefix in recompute mode).
    fn offset(&self) -> usize {
        self.prefix.as_ref().map_or(0, |p| p.len())
    }

    /// Writes the block (after the prefix, in recompute mode) into `ws.ids`.
    fn write_block(&self, block: &[u32]) {
        let ids = match &self.prefix {
            Some(p) => [p.as_slice(), block].concat(),
            None => block.to_vec(),
        };
        self.gpu.write(&self.buf.ws.ids, 0, bytemuck::cast_slice(&ids));
    }

    fn settings(&self, block_index: usize, step: u32) -> SampleSettings {
        sample_settings(self.opts, self.mask_id, block_index, step, self.cache.committed_total)
    }

    fn encode_step(&self, rec: &mut crate::gpu::Recorder, block_index: usize, step: u32) -> Result<()> {
        let l = self.buf.block;
        let off = self.offset();
        match &self.prefix {
            None => self.model.encode_forward(rec, &self.buf.ws, l, Attn::Cached(self.cache), None)?,
            Some(_) => self.model.encode_forward(rec, &self.buf.ws, off + l, Attn::BlockCausal, None)?,
        }
        self.model.encode_logits(rec, &self.buf.ws, off, l)?;
        SampleRows {
            logits: &self.buf.ws.logits,
            rows: l,
            vocab: self.vocab,
            stride: self.vocab,
            settings: self.settings(block_index, step),
            out: &self.buf.samples,
        }
        .encode(rec)?;
        Select {
            rule: self.rule,
            samples: &self.buf.samples,
            tokens: &self.buf.ws.ids,
            tok_offset: off,
            len: l,
            mask_id: self.mask_id,
            step,
            steps: self.steps,
            seed: select_seed(self.opts.seed, block_index),
            state: &self.buf.state,
        }
        .encode(rec)
    }

    fn encode_readback(&self, rec: &mut crate::gpu::Recorder) {
        let l = (self.buf.block * 4) as u64;
        rec.copy(self.buf.ws.ids.raw(), (self.offset() * 4) as u64, &self.buf.staging, 0, l);
        rec.copy(self.buf.state.raw(), 0, &self.buf.staging, l, 8);
    }

    async fn read_block(&self) -> Result<(Vec<u32>, u32)> {
        let bytes = self.gpu.map_read(&self.buf.staging, self.buf.staging_bytes()).await?;
        let words: &[u32] = bytemuck::cast_slice(&bytes);
        let l = self.buf.block;
        Ok((words[..l].to_vec(), words[l]))
    }

    /// Stores the block in `ws.ids` in the cache (recompute mode keeps it on the host instead).
    fn commit(&mut self, rec: &mut crate::gpu::Recorder) -> Result<()> {
        if self.prefix.is_none() {
            self.model.encode_forward(rec, &self.buf.ws, self.buf.block, Attn::Cached(self.cache), None)?;
            self.stats.commit_forwards += 1;
        }
        Ok(())
    }

    /// Book-keeping after a block is stored: the cache's length, or the recompute prefix with
    /// the same sliding window as the cache.
    fn committed(&mut self, tokens: &[u32]) {
        let l = self.buf.block;
        self.cache.commit(l);
        if let Some(p) = &mut self.prefix {
            p.extend_from_slice(tokens);
            while p.len() + l > self.context {
                p.drain(..l);
            }
        }
    }

    /// Denoises the block already written to `ws.ids` until no mask is left, commits it, and
    /// returns its tokens.
    async fn run_block(
        &mut self,
        block_index: usize,
        masked: usize,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<Vec<u32>>> {
        let l = self.buf.block;
        let masked = masked as u32;
        // Fixed step counts run the whole block in one submission unless steps are streamed.
        // First-hitting and confidence commit at least one position per step, so a block with
        // fewer masks (the prompt's partial block) needs fewer steps.
        let fixed = match self.rule {
            Rule::FirstHitting => Some(masked),
            Rule::Ddpm => Some(self.steps),
            Rule::Confidence { threshold, k } if threshold <= 0.0 && k == 0 => Some(self.steps.min(masked)),
            _ => None,
        };
        if let (Some(steps), false) = (fixed, self.opts.stream_steps) {
            let mut rec = self.gpu.recorder();
            for step in 0..steps {
                self.encode_step(&mut rec, block_index, step)?;
            }
            self.commit(&mut rec)?;
            self.encode_readback(&mut rec);
            rec.submit()?;
            let (tokens, left) = self.read_block().await?;
            self.stats.nfe += steps as usize;
            if left != 0 {
                return Err(Error::Gpu(format!(
                    "block {block_index} kept {left} masked positions after {steps} steps"
                )));
            }
            self.committed(&tokens);
            return Ok(Some(tokens));
        }
        // Step by step: read the block back after each step (streaming, or a data-dependent count).
        let max_steps = fixed.unwrap_or(l as u32).max(1);
        let mut step = 0;
        loop {
            let mut rec = self.gpu.recorder();
            self.encode_step(&mut rec, block_index, step)?;
            self.encode_readback(&mut rec);
            rec.submit()?;
            let (tokens, left) = self.read_block().await?;
            self.stats.nfe += 1;
            step += 1;
            let event =
                Event::Step { block: block_index, step, tokens: &tokens, mask_id: self.mask_id, masked: left as usize };
            if self.opts.stream_steps && !on_event(event) {
                return Ok(None);
            }
            if left == 0 {
                break;
            }
            if step >= max_steps.max(l as u32 * 4) {
                return Err(Error::Gpu(format!("block {block_index} did not finish in {step} steps")));
            }
        }
        let mut rec = self.gpu.recorder();
        self.commit(&mut rec)?;
        self.encode_readback(&mut rec);
        rec.submit()?;
        let (tokens, _) = self.read_block().await?;
        self.committed(&tokens);
        Ok(Some(tokens))
    }
}

/// Generates a continuation of `prompt_ids` (BD3-LM prompts start with BOS). The cache must
/// already hold the first `keep` prompt tokens (a multiple of the block length; 0 resets it).
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    cache: &mut KvCache,
    buf: &BlockBuffers,
    prompt_ids: &[u32],
    keep: usize,
    opts: &GenerateOptions,
    on_event: &mut dyn FnMut(Event) -> bool,
) -> Result<Generation> {
    let info = model.info();
    opts.validate(info.block_size)?;
    if prompt_ids.is_empty() {
        return Err(Error::input("the prompt must hold at least the BOS token"));
    }
    if let Some(&bad) = prompt_ids.iter().find(|&&t| t as usize >= info.vocab_size || t == info.mask_id) {
        return Err(Error::input(format!(
            "prompt token {bad} is not a valid input (vocabulary {}, [MASK] = {})",
            info.vocab_size, info.mask_id
        )));
    }
    let gpu = model.gpu().clone();
    let l = info.block_size;
    let start = crate::clock::now_ms();
    if keep == 0 {
        cache.reset();
    } else if !keep.is_multiple_of(l) || keep != cache.len || keep > prompt_ids.len() {
        return Err(Error::input(format!("cannot reuse {keep} cached tokens (cache holds {}, block {l})", cache.len)));
    }
    let mut lp = Loop {
        model,
        gpu: gpu.clone(),
        cache,
        buf,
        opts,
        rule: opts.rule(),
        steps: opts.steps.unwrap_or(l as u32),
        mask_id: info.mask_id,
        vocab: info.vocab_size,
        stats: Stats {
            prompt_tokens: prompt_ids.len(),
            reused_tokens: keep,
            prefill_tokens: prompt_ids.len() - keep,
            ..Default::default()
        },
        prefix: (!opts.kv_cache).then(Vec::new),
        context: info.context,
    };
    if lp.prefix.is_some() && buf.ws.rows < info.context {
        return Err(Error::input("recompute mode needs buffers for the whole context (BlockBuffers::with_rows)"));
    }

    // Whole prompt blocks go straight into the cache: in one pass where the architecture allows
    // it (scratch sized for the prompt, made once per generation), else one forward per block.
    let whole = prompt_ids.len() / l;
    let first = keep / l;
    let one_pass = info.prefill_in_one_pass && whole - first > 1 && lp.prefix.is_none();
    if one_pass {
        let n = (whole - first) * l;
        lp.cache.check_room(n + l)?;
        let ws = model.workspace_with_logits(n, 1)?;
        gpu.write(&ws.ids, 0, bytemuck::cast_slice(&prompt_ids[keep..whole * l]));
        let mut rec = gpu.recorder();
        model.encode_forward(&mut rec, &ws, n, Attn::Cached(lp.cache), None)?;
        rec.submit()?;
        lp.cache.commit(n);
        lp.stats.commit_forwards += 1;
    }
    for b in (if one_pass { whole } else { first })..whole {
        let ids = &prompt_ids[b * l..(b + 1) * l];
        lp.write_block(ids);
        let mut rec = gpu.recorder();
        lp.commit(&mut rec)?;
        rec.submit()?;
        lp.committed(ids);
    }
    let mut block: Vec<u32> = prompt_ids[whole * l..].to_vec();
    let fixed_in_first = block.len();
    block.resize(l, info.mask_id);

    let mut generated: Vec<u32> = Vec::new();
    let mut eos_token = None;
    let mut text = String::new();
    let stop;
    let mut block_index = 0;
    'outer: loop {
        lp.write_block(&block);
        let masked = block.iter().filter(|&&t| t == info.mask_id).count();
        let Some(tokens) = lp.run_block(block_index, masked, on_event).await? else {
            stop = StopReason::Cancelled;
            break;
        };
        let skip = if block_index == 0 { fixed_in_first } else { 0 };
        let mut new = tokens[skip..].to_vec();
        let mut done = None;
        if opts.stop_at_eos {
            if let Some(p) = new.iter().position(|t| tokenizer.eos.contains(t)) {
                eos_token = Some(new[p]);
                new.truncate(p);
                done = Some(StopReason::Eos);
            }
        }
        if generated.len() + new.len() >= opts.max_tokens {
            new.truncate(opts.max_tokens - generated.len());
            done = done.or(Some(StopReason::MaxTokens));
        }
        generated.extend_from_slice(&new);
        let mut full = tokenizer.decode(&generated)?;
        if let Some(cut) = opts.stop.iter().filter_map(|s| full.find(s.as_str())).min() {
            full.truncate(cut);
            done = Some(StopReason::StopString);
        }
        let delta = full.get(text.len()..).unwrap_or("").to_string();
        text = full;
        lp.stats.blocks += 1;
        if !on_event(Event::Block { block: block_index, tokens: &new, text: &delta }) {
            stop = StopReason::Cancelled;
            break;
        }
        if let Some(reason) = done {
            stop = reason;
            break 'outer;
        }
        if opts.entropy_guard {
            let all = [prompt_ids, &generated].concat();
            if all.len() >= GUARD_WINDOW && unigram_entropy(&all[all.len() - GUARD_WINDOW..]) < GUARD_ENTROPY {
                stop = StopReason::LowEntropy;
                break;
            }
        }
        block = vec![info.mask_id; l];
        block_index += 1;
    }
    let mut stats = lp.stats;
    stats.generated_tokens = generated.len();
    stats.elapsed_ms = crate::clock::now_ms() - start;
    stats.tokens_per_second = generated.len() as f64 / (stats.elapsed_ms / 1e3).max(1e-9);
    stats.tokens_per_forward = generated.len() as f64 / stats.nfe.max(1) as f64;
    Ok(Generation { text, tokens: generated, stop, eos_token, stats })
}
