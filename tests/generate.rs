//! Generation, score and probe on lavapipe with the tiny random BD3-LM (context 16, block 4) and
//! GPT-2's tokenizer: determinism, every strategy, stops, cancellation, generation far past the
//! context window against a CPU twin of the whole loop, and score/probe against the CPU reference.

mod common;
use blockdiff::kernels::{sample, select, topk};
use blockdiff::model::reference::{Bd3lmReference, CpuAttn};
use blockdiff::model::{bd3lm::Bd3lmWeights, Bd3lmConfig, LoadOptions, ModelFiles, Weights};
use blockdiff::sample::{sample_settings, select_seed};
use blockdiff::{gpu::DType, Event, GenerateOptions, ScoreOptions, Session, StopReason, Strategy};
use std::path::PathBuf;

fn tiny_files() -> Option<ModelFiles> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let dir = shared.join("golden/bd3lm-tiny-random");
    let tok = shared.join("tokenizers/gpt2/tokenizer.json");
    if !tok.exists() || !dir.exists() {
        assert!(std::env::var_os("CI").is_none(), "../shared is missing in CI");
        eprintln!("skipping: ../shared not found");
        return None;
    }
    let mut files = ModelFiles::from_dir(&dir).unwrap();
    files.tokenizer = Some(std::fs::read(tok).unwrap());
    Some(files)
}

fn session(dtype: DType) -> Option<Session> {
    let gpu = common::gpu()?;
    Some(Session::load(&gpu, &tiny_files()?, &LoadOptions { dtype: Some(dtype), ..Default::default() }).unwrap())
}

fn gen(s: &mut Session, prompt: &str, o: &GenerateOptions) -> blockdiff::Generation {
    pollster::block_on(s.generate(prompt, o, &mut |_| true)).unwrap()
}

fn opts(strategy: Strategy, seed: u64, max_tokens: usize) -> GenerateOptions {
    GenerateOptions { strategy, seed, max_tokens, stop_at_eos: false, ..Default::default() }
}

#[test]
fn same_seed_same_text_for_every_strategy() {
    let Some(mut s) = session(DType::F32) else { return };
    for strategy in [Strategy::FirstHitting, Strategy::Ddpm, Strategy::Confidence, Strategy::EntropyBounded] {
        let mut o = opts(strategy, 11, 22);
        o.top_p = 0.9;
        let a = gen(&mut s, "Hello world", &o);
        let b = gen(&mut s, "Hello world", &o);
        assert_eq!(a.tokens, b.tokens, "{strategy:?}");
        assert_eq!(a.tokens.len(), 22, "{strategy:?}");
        assert_eq!(a.stop, StopReason::MaxTokens);
        assert!(a.stats.nfe > 0 && a.stats.tokens_per_forward > 0.0);
        o.seed = 12;
        let c = gen(&mut s, "Hello world", &o);
        assert_ne!(a.tokens, c.tokens, "{strategy:?}: a different seed should change the text");
    }
}

#[test]
fn parallel_strategies_use_fewer_forwards() {
    let Some(mut s) = session(DType::F32) else { return };
    // First-hitting: one token per forward. Confidence with 2 steps per block of 4: two per forward.
    let fh = gen(&mut s, "", &opts(Strategy::FirstHitting, 1, 16));
    let mut o = opts(Strategy::Confidence, 1, 16);
    o.steps = Some(2);
    let conf = gen(&mut s, "", &o);
    // The prompt (BOS) leaves 3 masks in the first block.
    assert_eq!(fh.stats.nfe, 3 + 4 * 4);
    assert_eq!(conf.stats.nfe, 2 + 4 * 2);
    let mut o = opts(Strategy::Confidence, 1, 16);
    o.per_step = Some(4);
    assert_eq!(gen(&mut s, "", &o).stats.nfe, 5);
    o.per_step = None;
    o.threshold = Some(1.0); // nothing reaches p = 1: exactly one per step
    assert_eq!(gen(&mut s, "", &o).stats.nfe, 3 + 4 * 4);
}

#[test]
fn stop_strings_cancel_and_eos() {
    let Some(mut s) = session(DType::F32) else { return };
    let o = opts(Strategy::FirstHitting, 5, 24);
    let full = gen(&mut s, "The", &o);
    let words: Vec<&str> = full.text.split_whitespace().collect();
    let stop = words[words.len() / 2].to_string();
    let mut o2 = o.clone();
    o2.stop = vec![stop.clone()];
    let cut = gen(&mut s, "The", &o2);
    assert_eq!(cut.stop, StopReason::StopString);
    assert!(!cut.text.contains(&stop) && full.text.starts_with(&cut.text));

    // Cancelling after the first block stops cleanly; the session stays usable.
    let mut blocks = 0;
    let g = pollster::block_on(s.generate("The", &o, &mut |e| {
        if let Event::Block { .. } = e {
            blocks += 1;
        }
        blocks < 1
    }))
    .unwrap();
    assert_eq!(g.stop, StopReason::Cancelled);
    assert_eq!(gen(&mut s, "The", &o).tokens, full.tokens);

    // Streaming steps reports each step's block with fewer masks each time.
    let mut masked = Vec::new();
    let mut o3 = o.clone();
    o3.stream_steps = true;
    o3.max_tokens = 4;
    let streamed = pollster::block_on(s.generate("", &o3, &mut |e| {
        if let Event::Step { masked: m, .. } = e {
            masked.push(m);
        }
        true
    }))
    .unwrap();
    assert_eq!(masked[..3], [2, 1, 0]);
    let mut o4 = o.clone();
    o4.max_tokens = 4;
    assert_eq!(streamed.tokens, gen(&mut s, "", &o4).tokens, "streaming must not change the text");

    // EOS: a model whose output bias makes <|endoftext|> certain stops at once.
    let gpu = common::gpu().unwrap();
    let mut files = tiny_files().unwrap();
    let bytes = std::fs::read(PathBuf::from(&files.source).join("model.safetensors")).unwrap();
    files.weights = Weights::Bytes(boost_token(&bytes, "backbone.output_layer.linear.bias", 50256, 1000.0));
    let mut eos = Session::load(&gpu, &files, &LoadOptions { dtype: Some(DType::F32), ..Default::default() }).unwrap();
    let mut o5 = o.clone();
    o5.stop_at_eos = true;
    let g = gen(&mut eos, "Hello", &o5);
    assert_eq!(g.stop, StopReason::Eos);
    assert!(g.tokens.is_empty());
}

/// Returns a copy of a safetensors file with `bias[token] += delta` (f32 tensor).
fn boost_token(bytes: &[u8], name: &str, token: usize, delta: f32) -> Vec<u8> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + header_len;
    let mut out = bytes.to_vec();
    let at = start + token * 4;
    let v = f32::from_le_bytes(out[at..at + 4].try_into().unwrap()) + delta;
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    out
}

/// A CPU twin of the whole generation loop (reference forward + CPU sampler + CPU select).
fn cpu_generate(files: &ModelFiles, prompt_ids: &[u32], o: &GenerateOptions) -> Vec<u32> {
    let cfg = Bd3lmConfig::from_json(&files.config).unwrap();
    let r =
        Bd3lmReference::new(cfg.clone(), Bd3lmWeights::from_checkpoint(&cfg, &files.checkpoint().unwrap()).unwrap());
    let (l, mask, v) = (cfg.block_size, cfg.mask_id(), cfg.vocab_size);
    let mut cache = r.new_cache();
    let mut committed = 0;
    let whole = prompt_ids.len() / l;
    for b in 0..whole {
        r.forward(&prompt_ids[b * l..(b + 1) * l], CpuAttn::Cached { cache: &mut cache, commit: true });
        committed += l;
    }
    let mut block: Vec<u32> = prompt_ids[whole * l..].to_vec();
    let skip = block.len();
    block.resize(l, mask);
    let mut out = Vec::new();
    let rule = match o.strategy {
        Strategy::FirstHitting => select::Rule::FirstHitting,
        _ => unreachable!(),
    };
    for bi in 0.. {
        let mut step = 0;
        while block.contains(&mask) {
            let f = r.forward(&block, CpuAttn::Cached { cache: &mut cache, commit: false });
            let logits = r.logits(&f.h);
            let st = sample_settings(o, mask, bi, step, committed);
            let samples: Vec<sample::Sample> =
                (0..l).map(|i| sample::cpu_row(&logits[i * v..(i + 1) * v], &st, i as u32)).collect();
            select::cpu(rule, &samples, &mut block, mask, step, l as u32, select_seed(o.seed, bi));
            step += 1;
        }
        r.forward(&block, CpuAttn::Cached { cache: &mut cache, commit: true });
        committed += l;
        out.extend_from_slice(&block[if bi == 0 { skip } else { 0 }..]);
        if out.len() >= o.max_tokens {
            out.truncate(o.max_tokens);
            return out;
        }
        block = vec![mask; l];
    }
    unreachable!()
}

#[test]
fn generation_far_past_the_window_matches_a_cpu_twin() {
    // 40 tokens through a 16-token window: the cache drops its oldest block 8 times. Greedy
    // tokens (and first-hitting's positions) must agree with the CPU reference loop exactly.
    let Some(mut s) = session(DType::F32) else { return };
    let files = tiny_files().unwrap();
    let mut o = opts(Strategy::FirstHitting, 9, 40);
    o.temperature = 0.0;
    o.entropy_guard = false;
    let ids = s.prompt_ids("Hello world, how").unwrap();
    let gpu_out = gen(&mut s, "Hello world, how", &o);
    assert_eq!(gpu_out.tokens, cpu_generate(&files, &ids, &o));
}

#[test]
fn score_and_probe_match_the_cpu_reference() {
    let Some(mut s) = session(DType::F32) else { return };
    let files = tiny_files().unwrap();
    let cfg = Bd3lmConfig::from_json(&files.config).unwrap();
    let r =
        Bd3lmReference::new(cfg.clone(), Bd3lmWeights::from_checkpoint(&cfg, &files.checkpoint().unwrap()).unwrap());
    let text = "It was the best of times, it was the worst of times, it was the age of wisdom";

    // Per-position cross-entropy of the likelihood path equals the CPU reference.
    let x0 = s.prompt_ids(text).unwrap()[..16].to_vec();
    let xt: Vec<u32> = x0.iter().enumerate().map(|(i, &t)| if i % 3 == 1 { cfg.mask_id() } else { t }).collect();
    let ce = pollster::block_on(s.cross_entropy(&xt, &x0)).unwrap();
    let f = r.forward(&[xt.clone(), x0.clone()].concat(), CpuAttn::Likelihood);
    let logits = r.logits(&f.h[..16 * cfg.hidden_dim]);
    for i in 0..16 {
        let want = blockdiff::kernels::logprob::cpu_row(
            &logits[i * cfg.vocab_size..(i + 1) * cfg.vocab_size],
            cfg.mask_id(),
            x0[i],
        );
        assert!((ce[i] - want).abs() < 1e-3, "position {i}: {} vs {want}", ce[i]);
    }

    // The bound is deterministic under a seed, finite, and its error shrinks with samples.
    let a = pollster::block_on(s.score(text, &ScoreOptions { samples: 4, seed: 1 })).unwrap();
    let b = pollster::block_on(s.score(text, &ScoreOptions { samples: 4, seed: 1 })).unwrap();
    assert_eq!(a.nll, b.nll);
    assert!(a.nll.is_finite() && a.nll > 0.0 && a.tokens == s.prompt_ids(text).unwrap().len() - 2);
    // A random 50k-vocabulary model scores near log(50257) ≈ 10.8 nats per masked token.
    let many = pollster::block_on(s.score(text, &ScoreOptions { samples: 32, seed: 2 })).unwrap();
    assert!((many.nll - 10.8).abs() < 4.0 * many.std_err + 1.5, "{many:?}");

    // The probe equals the CPU reference's top-k on the same block-causal forward.
    let rows = pollster::block_on(s.probe("Hello world", 6, 3)).unwrap();
    let mut ids = s.prompt_ids("Hello world").unwrap();
    let p = ids.len();
    ids.extend(std::iter::repeat_n(cfg.mask_id(), 6));
    let f = r.forward(&ids, CpuAttn::BlockCausal);
    let logits = r.logits(&f.h);
    for (i, row) in rows.iter().enumerate() {
        let want = topk::cpu_row(&logits[(p + i) * cfg.vocab_size..(p + i + 1) * cfg.vocab_size], cfg.mask_id(), 3);
        assert_eq!(row.tokens, want.tokens);
        assert!(common::max_abs_diff(&row.probs, &want.probs) < 1e-5);
        assert_eq!(row.distance, i + 1);
    }
}

#[test]
fn bad_options_and_inputs_are_errors() {
    let Some(mut s) = session(DType::F32) else { return };
    for o in [
        GenerateOptions { temperature: -1.0, ..Default::default() },
        GenerateOptions { top_p: 0.0, ..Default::default() },
        GenerateOptions { top_p: 1.5, ..Default::default() },
        GenerateOptions { steps: Some(0), ..Default::default() },
        GenerateOptions { max_tokens: 0, ..Default::default() },
        GenerateOptions { threshold: Some(1.5), ..Default::default() },
        GenerateOptions { per_step: Some(99), ..Default::default() },
    ] {
        let e = pollster::block_on(s.generate("x", &o, &mut |_| true)).unwrap_err();
        assert!(matches!(e, blockdiff::Error::Options(_)), "{e}");
    }
    assert!(pollster::block_on(s.probe("x", 0, 3)).is_err());
    assert!(pollster::block_on(s.probe("x", 100, 3)).is_err());
    assert!(pollster::block_on(s.score("", &ScoreOptions::default())).is_err());
    // Still usable afterwards.
    assert_eq!(gen(&mut s, "x", &opts(Strategy::FirstHitting, 1, 4)).tokens.len(), 4);
}

#[test]
fn recompute_mode_equals_the_cache_inside_the_window() {
    // Without the cache every step re-runs the prefix block-causally; inside the first window the
    // cached keys are exactly those values, so greedy text must agree token for token.
    let Some(mut s) = session(DType::F32) else { return };
    let mut o = opts(Strategy::Confidence, 3, 11);
    o.temperature = 0.0;
    let cached = gen(&mut s, "", &o);
    o.kv_cache = false;
    let recomputed = gen(&mut s, "", &o);
    assert_eq!(cached.tokens, recomputed.tokens);
    assert_eq!(recomputed.stats.commit_forwards, 0);
    // Past the window both keep going (the baseline drops old blocks like the cache does).
    o.max_tokens = 30;
    assert_eq!(gen(&mut s, "", &o).tokens.len(), 30);
}
