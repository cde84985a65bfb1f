//! A loaded model ready to use: model + tokenizer + KV cache + the block loop's buffers.
//! This is the API the CLI, the desktop example and the browser module share.

use crate::cache::KvCache;
use crate::chat::{ChatMessage, ChatTemplate, GenerationConfig};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
use crate::kernels::{logprob::CrossEntropy, rng, topk};
use crate::model::{Attn, LoadOptions, Model, ModelFiles, ModelInfo, Workspace};
use crate::sample::{self, BlockBuffers, Event, GenerateOptions, Generation};
use crate::tokenizer::Tokenizer;
use std::sync::Arc;

pub struct Session {
    pub model: Model,
    pub tokenizer: Tokenizer,
    cache: KvCache,
    block: BlockBuffers,
    /// Buffers for recompute-mode generation (the no-cache baseline), made on first use.
    recompute: Option<BlockBuffers>,
    /// Lazily allocated scratch for score/probe (2 × context rows).
    wide: Option<WideBuffers>,
    pub chat_template: ChatTemplate,
    pub generation_config: GenerationConfig,
    /// The tokens whose keys/values the cache holds, in order (for reuse across chat turns).
    cached_ids: Vec<u32>,
}

struct WideBuffers {
    ws: Workspace,
    targets: GpuBuffer,
    out: GpuBuffer,
}

/// Monte-Carlo settings of [`Session::score`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScoreOptions {
    pub samples: usize,
    pub seed: u64,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { samples: 16, seed: 0 }
    }
}

/// The block-diffusion NLL upper bound of a text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Score {
    /// Nats per token (BOS not counted).
    pub nll: f64,
    /// Standard error of `nll` over the Monte-Carlo samples.
    pub std_err: f64,
    /// exp(nll): an upper bound on the perplexity.
    pub perplexity: f64,
    pub tokens: usize,
    pub samples: usize,
    /// Each Monte-Carlo sample's estimate (paired comparisons between models use these).
    pub per_sample: Vec<f64>,
}

/// One probed position.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProbeRow {
    /// Distance from the end of the prompt (1 = the first masked position).
    pub distance: usize,
    pub tokens: Vec<u32>,
    pub texts: Vec<String>,
    pub probs: Vec<f32>,
    pub entropy: f32,
}

/// Smallest mask rate drawn by `score` (the authors' sampling_eps_min).
const SCORE_T_MIN: f64 = 1e-3;

impl Session {
    /// Loads a model directory's files onto `gpu`.
    pub fn load(gpu: &Arc<Gpu>, files: &ModelFiles, options: &LoadOptions) -> Result<Session> {
        let tok_bytes = files
            .tokenizer
            .as_ref()
            .ok_or_else(|| Error::Tokenizer(format!("{} has no tokenizer.json", files.source)))?;
        let mut tokenizer = Tokenizer::from_bytes(tok_bytes)?;
        let generation_config = files.generation_config.as_ref().map(GenerationConfig::from_json).unwrap_or_default();
        for &e in &generation_config.eos {
            if !tokenizer.eos.contains(&e) {
                tokenizer.eos.push(e);
            }
        }
        let chat_template = ChatTemplate::new(files.chat_template.as_deref(), files.tokenizer_config.as_ref())?;
        let model = Model::load(gpu, files, options)?;
        let info = model.info();
        if tokenizer.vocab_size() > info.vocab_size {
            return Err(Error::config(format!(
                "the tokenizer has {} tokens but the model's vocabulary is {}",
                tokenizer.vocab_size(),
                info.vocab_size
            )));
        }
        if info.add_bos && tokenizer.bos.is_none() {
            return Err(Error::Tokenizer("the tokenizer has no <|endoftext|> token to use as BOS".into()));
        }
        let cache = model.new_cache()?;
        let block = BlockBuffers::new(&model)?;
        Ok(Session {
            model,
            tokenizer,
            cache,
            block,
            recompute: None,
            wide: None,
            chat_template,
            generation_config,
            cached_ids: Vec::new(),
        })
    }

    /// Native convenience: load a directory with default options.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(gpu: &Arc<Gpu>, dir: impl AsRef<std::path::Path>, options: &LoadOptions) -> Result<Session> {
        Self::load(gpu, &ModelFiles::from_dir(dir)?, options)
    }

    pub fn info(&self) -> ModelInfo {
        self.model.info()
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        self.model.gpu()
    }

    /// GPU bytes held by the weights and by the KV cache.
    pub fn memory(&self) -> (u64, u64) {
        (self.model.weight_bytes(), self.cache.bytes())
    }

    /// The prompt's tokens, after BOS for models trained with one (BD3-LM).
    pub fn prompt_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let ids = self.text_ids(prompt)?;
        if ids.is_empty() {
            return Err(Error::input("the prompt is empty (this model has no BOS token to start from)"));
        }
        Ok(ids)
    }

    /// Generates a continuation of `prompt`, streaming events to `on_event` (return `false` to
    /// cancel; the session stays usable).
    pub async fn generate(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Generation> {
        let ids = self.prompt_ids(prompt)?;
        self.generate_ids(&ids, options, false, on_event).await
    }

    /// Generates after the token ids `ids`. With `reuse`, the cached keys/values of the longest
    /// block-aligned prefix shared with the previous call are kept (models without a sliding
    /// window), so a conversation's earlier turns are never recomputed.
    pub async fn generate_ids(
        &mut self,
        ids: &[u32],
        options: &GenerateOptions,
        reuse: bool,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Generation> {
        let l = self.info().block_size;
        let mut keep = 0;
        if reuse && self.cache.window.is_none() && options.kv_cache {
            let common = self.cached_ids.iter().zip(ids).take_while(|(a, b)| a == b).count();
            keep = (common.min(self.cache.len) / l) * l;
        }
        if keep > 0 {
            self.cache.truncate(keep)?;
        }
        self.cached_ids.clear();
        let buffers = if options.kv_cache {
            &self.block
        } else {
            if self.recompute.is_none() {
                self.recompute = Some(BlockBuffers::with_rows(&self.model, self.model.info().context)?);
            }
            self.recompute.as_ref().ok_or_else(|| Error::Gpu("recompute buffers missing".into()))?
        };
        let g = sample::generate(&self.model, &self.tokenizer, &mut self.cache, buffers, ids, keep, options, on_event)
            .await?;
        // Remember what the cache now holds, dropping the block that ran past the answer's end.
        if self.cache.window.is_none() && options.kv_cache {
            let mut all = [ids, &g.tokens].concat();
            all.extend(g.eos_token);
            let n = ((all.len() / l) * l).min(self.cache.len);
            self.cache.truncate(n)?;
            all.truncate(n);
            self.cached_ids = all;
        }
        Ok(g)
    }

    /// Answers the last message of `messages` (rendered with the model's chat template), reusing
    /// the cache of the conversation so far.
    pub async fn chat(
        &mut self,
        messages: &[ChatMessage],
        options: &GenerateOptions,
        on_event: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Generation> {
        let ids = self.chat_ids(messages)?;
        self.generate_ids(&ids, options, true, on_event).await
    }

    /// The prompt tokens [`chat`](Self::chat) generates after: `messages` rendered with the chat
    /// template and encoded (after BOS for models trained with one).
    pub fn chat_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.text_ids(&self.chat_template.render(messages)?)
    }

    /// `text` encoded, after BOS for models trained with one (BD3-LM).
    pub fn text_ids(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.info().add_bos {
            ids.push(self.tokenizer.bos.unwrap_or(0));
        }
        ids.extend(self.tokenizer.encode(text)?);
        Ok(ids)
    }

    /// Forgets the cached conversation.
    pub fn reset(&mut self) {
        self.cache.reset();
        self.cached_ids.clear();
    }

    /// Options with this model's `generation_config.json` sampling defaults applied.
    pub fn default_options(&self) -> GenerateOptions {
        let g = &self.generation_config;
        GenerateOptions {
            temperature: g.temperature.unwrap_or(1.0),
            top_p: g.top_p.unwrap_or(1.0),
            top_k: g.top_k.unwrap_or(0),
            ..Default::default()
        }
    }

    fn wide(&mut self) -> Result<&WideBuffers> {
        if self.wide.is_none() {
            let ctx = self.info().context;
            let gpu = self.model.gpu().clone();
            self.wide = Some(WideBuffers {
                ws: self.model.workspace(2 * ctx)?,
                targets: gpu.storage("targets", (ctx * 4) as u64)?,
                out: gpu.storage("row results", (ctx * 4 * 66) as u64)?,
            });
        }
        self.wide.as_ref().ok_or_else(|| Error::Gpu("scratch buffers missing".into()))
    }

    /// The block-diffusion NLL upper bound of `text` by Monte-Carlo over mask rates: per window
    /// of `context` tokens ([BOS] + text, split consecutively) and sample, each block draws
    /// t ~ U[1e-3, 1), masks each token with probability t, runs the likelihood forward over
    /// `x_t ⊕ x_0`, and adds CE/t over masked positions 1..len-1 ([MASK] excluded from the softmax).
    pub async fn score(&mut self, text: &str, options: &ScoreOptions) -> Result<Score> {
        if options.samples == 0 {
            return Err(Error::options("score needs at least one sample"));
        }
        let ids = self.prompt_ids(text)?;
        let info = self.info();
        let windows: Vec<Vec<u32>> = ids.chunks(info.context).filter(|w| w.len() >= 2).map(|w| w.to_vec()).collect();
        let counted: usize = windows.iter().map(|w| w.len() - 1).sum();
        if counted == 0 {
            return Err(Error::input("the text is empty: nothing to score"));
        }
        let gpu = self.model.gpu().clone();
        self.wide()?;
        let mut per_sample = Vec::with_capacity(options.samples);
        for s in 0..options.samples {
            let mut total = 0.0f64;
            for (wi, x0) in windows.iter().enumerate() {
                let n = x0.len();
                let key = rng::row_key(options.seed, s as u32, wi as u32);
                let t_block: Vec<f64> = (0..n.div_ceil(info.block_size))
                    .map(|b| {
                        let u = rng::unit(rng::pcg(rng::pcg(b as u32 ^ 0x5bd1_e995) ^ key)) as f64;
                        SCORE_T_MIN + (1.0 - SCORE_T_MIN) * u
                    })
                    .collect();
                let xt: Vec<u32> = (0..n)
                    .map(|i| {
                        let u = rng::unit(rng::pcg(rng::pcg(i as u32) ^ key.rotate_left(7))) as f64;
                        if u < t_block[i / info.block_size] {
                            info.mask_id
                        } else {
                            x0[i]
                        }
                    })
                    .collect();
                let ce = self.cross_entropy(&xt, x0).await?;
                total += (1..n)
                    .filter(|&i| xt[i] == info.mask_id)
                    .map(|i| ce[i] as f64 / t_block[i / info.block_size])
                    .sum::<f64>();
            }
            per_sample.push(total / counted as f64);
        }
        gpu.check()?;
        let m = per_sample.len() as f64;
        let mean = per_sample.iter().sum::<f64>() / m;
        let var = if per_sample.len() > 1 {
            per_sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0)
        } else {
            0.0
        };
        Ok(Score {
            nll: mean,
            std_err: (var / m).sqrt(),
            perplexity: mean.exp(),
            tokens: counted,
            samples: options.samples,
            per_sample,
        })
    }

    /// Per-position cross-entropy of `x0` given `xt` (likelihood forward, logits stay on the GPU).
    pub async fn cross_entropy(&mut self, xt: &[u32], x0: &[u32]) -> Result<Vec<f32>> {
        let info = self.info();
        let n = xt.len();
        let gpu = self.model.gpu().clone();
        self.wide()?;
        let wide = self.wide.as_ref().ok_or_else(|| Error::Gpu("scratch buffers missing".into()))?;
        let ids = [xt, x0].concat();
        gpu.write(&wide.ws.ids, 0, bytemuck::cast_slice(&ids));
        gpu.write(&wide.targets, 0, bytemuck::cast_slice(x0));
        let mut rec = gpu.recorder();
        self.model.encode_forward(&mut rec, &wide.ws, 2 * n, Attn::Likelihood, None)?;
        rec.submit()?;
        let mut r = 0;
        while r < n {
            let m = wide.ws.logits_rows.min(n - r);
            let mut rec = gpu.recorder();
            self.model.encode_logits(&mut rec, &wide.ws, r, m)?;
            CrossEntropy {
                logits: &wide.ws.logits,
                rows: m,
                vocab: info.vocab_size,
                stride: info.vocab_size,
                mask_id: info.mask_id,
                targets: &wide.targets,
                target_offset: r,
                out: &wide.out,
                out_offset: r,
            }
            .encode(&mut rec)?;
            rec.submit()?;
            r += m;
        }
        gpu.read_f32(&wide.out, 0, n).await
    }

    /// Appends `n_masks` `[MASK]` tokens after the prompt, runs one block-causal forward, and
    /// returns the top-`k` tokens and entropy of every masked position.
    pub async fn probe(&mut self, prompt: &str, n_masks: usize, k: usize) -> Result<Vec<ProbeRow>> {
        let info = self.info();
        if k == 0 || k > 32 {
            return Err(Error::options(format!("probe top-k must be in [1, 32], got {k}")));
        }
        let mut ids = self.prompt_ids(prompt)?;
        let p = ids.len();
        if n_masks == 0 || p + n_masks > info.context {
            return Err(Error::input(format!(
                "the prompt ({p} tokens with BOS) plus {n_masks} masks must fit the context of {} tokens",
                info.context
            )));
        }
        ids.extend(std::iter::repeat_n(info.mask_id, n_masks));
        let gpu = self.model.gpu().clone();
        self.wide()?;
        let wide = self.wide.as_ref().ok_or_else(|| Error::Gpu("scratch buffers missing".into()))?;
        gpu.write(&wide.ws.ids, 0, bytemuck::cast_slice(&ids));
        let mut rec = gpu.recorder();
        self.model.encode_forward(&mut rec, &wide.ws, ids.len(), Attn::BlockCausal, None)?;
        rec.submit()?;
        let mut rows = Vec::with_capacity(n_masks);
        let mut r = 0;
        while r < n_masks {
            let m = wide.ws.logits_rows.min(n_masks - r).min(64);
            let mut rec = gpu.recorder();
            self.model.encode_logits(&mut rec, &wide.ws, p + r, m)?;
            topk::TopKRows {
                logits: &wide.ws.logits,
                rows: m,
                vocab: info.vocab_size,
                stride: info.vocab_size,
                mask_id: info.mask_id,
                k,
                out: &wide.out,
            }
            .encode(&mut rec)?;
            rec.submit()?;
            let words = gpu.read_f32(&wide.out, 0, m * (2 * k + 2)).await?;
            for (i, t) in topk::decode(&words, m, k).into_iter().enumerate() {
                rows.push(ProbeRow {
                    distance: r + i + 1,
                    texts: t.tokens.iter().map(|&id| self.tokenizer.token_text(id)).collect(),
                    tokens: t.tokens,
                    probs: t.probs,
                    entropy: t.entropy,
                });
            }
            r += m;
        }
        Ok(rows)
    }
}
