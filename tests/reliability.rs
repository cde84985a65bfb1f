//! Bad inputs get clear errors and lose nothing: corrupted checkpoints, bad configs and
//! tokenizers, limits, prompts and options; load/generate/drop cycles do not leak; a lost device
//! surfaces as an error; fuzzed loaders and options never panic.

mod common;
use blockdiff::gpu::{DType, Gpu, GpuOptions};
use blockdiff::model::synthetic::{bd3lm_tensors, safetensors_bytes, Tensors};
use blockdiff::model::{Bd3lmConfig, Checkpoint, LoadOptions, ModelFiles, SdarConfig};
use blockdiff::{Error, GenerateOptions, Session};
use proptest::prelude::*;
use std::path::PathBuf;

fn demo_tokenizer() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/bd3lm-shakespeare-tiny/tokenizer.json"))
        .expect("the bundled demo model's tokenizer")
}

/// A 1-layer BD3-LM on the demo tokenizer's 4096-token vocabulary.
fn tiny() -> (serde_json::Value, Tensors) {
    bd3lm_tensors(1, 32, 2, 4096, 32, 4)
}

fn files(config: &serde_json::Value, weights: Vec<u8>) -> ModelFiles {
    ModelFiles::from_bytes("test", &serde_json::to_vec(config).unwrap(), weights, Some(demo_tokenizer())).unwrap()
}

fn load(gpu: &std::sync::Arc<Gpu>, f: &ModelFiles) -> Result<Session, Error> {
    Session::load(gpu, f, &LoadOptions { dtype: Some(DType::F32), ..Default::default() })
}

/// Rewrites the JSON header of a safetensors file, keeping its data.
fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut h);
    let mut hb = serde_json::to_vec(&h).unwrap();
    while !hb.len().is_multiple_of(8) {
        hb.push(b' ');
    }
    [&(hb.len() as u64).to_le_bytes()[..], &hb, &bytes[8 + n..]].concat()
}

/// A device of the test's own: its buffer accounting must not see other tests' allocations.
fn own_gpu() -> Option<std::sync::Arc<Gpu>> {
    common::gpu()?;
    Some(Gpu::new_blocking(GpuOptions::default()).unwrap())
}

#[test]
fn corrupted_checkpoints_are_clear_errors() {
    let Some(gpu) = own_gpu() else { return };
    let (config, tensors) = tiny();
    let good = safetensors_bytes(&tensors);
    let base = gpu.memory().live_bytes();
    let expect = |weights: Vec<u8>, needle: &str| {
        let e = load(&gpu, &files(&config, weights)).err().expect("must fail").to_string();
        assert!(e.contains(needle), "error '{e}' should mention '{needle}'");
        assert_eq!(gpu.memory().live_bytes(), base, "a failed load must free what it allocated");
    };
    expect(good[..good.len() / 2].to_vec(), "not a valid safetensors file");
    expect([&u64::MAX.to_le_bytes()[..], &good[8..]].concat(), "not a valid safetensors file");
    expect([&good[..8], b"{not json", &good[17..]].concat(), "not a valid safetensors file");
    expect(
        edit_header(&good, |h| h["backbone.blocks.0.norm1.weight"]["data_offsets"][1] = serde_json::json!(1u64 << 40)),
        "not a valid safetensors file",
    );
    expect(edit_header(&good, |h| h["backbone.blocks.0.norm1.weight"]["dtype"] = "I32".into()), "dtype I32");
    let mut missing = tensors.clone();
    missing.retain(|(n, _, _)| n != "backbone.blocks.0.attn_out.weight");
    expect(safetensors_bytes(&missing), "missing tensor 'backbone.blocks.0.attn_out.weight'");
    let mut wrong = tensors.clone();
    let i = wrong.iter().position(|(n, _, _)| n == "backbone.blocks.0.attn_qkv.weight").unwrap();
    wrong[i].1 = vec![32, 96];
    expect(safetensors_bytes(&wrong), "expected shape [96, 32], found [32, 96]");
    let mut nan = tensors.clone();
    nan[0].2[5] = f32::NAN;
    expect(safetensors_bytes(&nan), "non-finite");
    // The good checkpoint still loads afterwards.
    assert!(load(&gpu, &files(&config, good)).is_ok());
}

#[test]
fn bad_configs_and_tokenizers_are_clear_errors() {
    let (config, _) = tiny();
    let bad = |edit: &dyn Fn(&mut serde_json::Value), needle: &str| {
        let mut c = config.clone();
        edit(&mut c);
        let e = Bd3lmConfig::from_json(&c).expect_err("must fail").to_string();
        assert!(e.contains(needle), "'{e}' should mention '{needle}'");
    };
    bad(&|c| drop(c.as_object_mut().unwrap().remove("hidden_dim")), "missing key 'hidden_dim'");
    bad(&|c| c["n_heads"] = "four".into(), "'n_heads' must be a non-negative integer");
    bad(&|c| c["n_heads"] = 3.into(), "not divisible by n_heads");
    bad(&|c| c["n_blocks"] = 0.into(), "'n_blocks' = 0 is out of range");
    bad(&|c| c["hidden_dim"] = (1u64 << 40).into(), "out of range");
    bad(&|c| c["model_length"] = 6.into(), "multiple of block_size");
    bad(&|c| c["adaln"] = "yes".into(), "'adaln' must be true or false");
    let sdar = serde_json::json!({"model_type": "sdar", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
        "rope_theta": 10000.0, "block_size": 4, "mask_token_id": 100});
    let e = SdarConfig::from_json(&sdar).unwrap_err().to_string();
    assert!(e.contains("mask_token_id 100 is outside the vocabulary"), "{e}");
    let e = blockdiff::model::detect(&serde_json::json!({"model_type": "llama"})).unwrap_err().to_string();
    assert!(e.contains("unsupported model_type 'llama'"), "{e}");

    let Some(gpu) = common::gpu() else { return };
    let (config, tensors) = tiny();
    let mut f = files(&config, safetensors_bytes(&tensors));
    f.tokenizer = Some(b"{\"model\": 42".to_vec());
    let e = load(&gpu, &f).err().expect("must fail").to_string();
    assert!(e.contains("tokenizer.json is malformed"), "{e}");
    // A tokenizer larger than the model's vocabulary.
    let (small, st) = bd3lm_tensors(1, 32, 2, 100, 32, 4);
    let e = load(&gpu, &files(&small, safetensors_bytes(&st))).err().expect("must fail").to_string();
    assert!(e.contains("the tokenizer has 4096 tokens but the model's vocabulary is 100"), "{e}");
}

#[test]
fn a_model_over_the_device_limits_fails_before_allocating() {
    let opts = GpuOptions { storage_binding_cap: Some(1024), min_storage_binding: 0, ..Default::default() };
    let Ok(gpu) = Gpu::new_blocking(opts) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    let (config, tensors) = tiny();
    let before = gpu.memory().peak_bytes();
    let e = load(&gpu, &files(&config, safetensors_bytes(&tensors))).err().expect("must fail").to_string();
    assert!(e.contains("max_storage_buffer_binding_size") && e.contains("needs 16384"), "{e}");
    assert_eq!(gpu.memory().peak_bytes(), before, "nothing may be allocated before the limit check");
}

#[test]
fn bad_prompts_and_options_keep_the_session_usable() {
    let Some(gpu) = common::gpu() else { return };
    let (config, tensors) = tiny();
    let mut s = load(&gpu, &files(&config, safetensors_bytes(&tensors))).unwrap();
    let o = GenerateOptions { max_tokens: 4, ..Default::default() };
    for ids in [vec![], vec![4096u32], vec![1, 2, u32::MAX], vec![4095]] {
        let e = pollster::block_on(s.generate_ids(&ids, &o, false, &mut |_| true)).unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{e}");
    }
    let e = pollster::block_on(s.generate("x", &GenerateOptions { top_p: f32::NAN, ..o.clone() }, &mut |_| true));
    assert!(matches!(e, Err(Error::Options(_))));
    // Longer than the 32-token context: the sliding window keeps generation going.
    let long = "word ".repeat(40);
    let g = pollster::block_on(s.generate(&long, &o, &mut |_| true)).unwrap();
    assert_eq!(g.tokens.len(), 4);
    let e = pollster::block_on(s.probe(&long, 4, 3)).unwrap_err().to_string();
    assert!(e.contains("must fit the context of 32 tokens"), "{e}");
}

#[test]
fn load_generate_drop_cycles_do_not_leak() {
    let Some(gpu) = own_gpu() else { return };
    let (config, tensors) = tiny();
    let f = files(&config, safetensors_bytes(&tensors));
    let base = gpu.memory().live_bytes();
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    };
    let mut rss_after_warmup = 0;
    for cycle in 0..50 {
        let mut s = load(&gpu, &f).unwrap();
        let g =
            pollster::block_on(
                s.generate("a", &GenerateOptions { max_tokens: 4, ..Default::default() }, &mut |_| true),
            )
            .unwrap();
        assert_eq!(g.tokens.len(), 4);
        assert!(gpu.memory().live_bytes() > base);
        drop(s);
        gpu.wait_idle().unwrap();
        assert_eq!(gpu.memory().live_bytes(), base, "cycle {cycle} leaked GPU buffers");
        if cycle == 4 {
            rss_after_warmup = rss();
        }
    }
    // Host memory too (on lavapipe the "GPU" is host memory): before kernel parameters moved to a
    // storage buffer there, its JIT kept a shader variant per dispatch, 127 MiB over these cycles.
    let growth = rss().saturating_sub(rss_after_warmup);
    println!("GPU bytes back to {base} after every cycle; host RSS growth over 45 cycles: {} KiB", growth / 1024);
    assert!(growth < 8 << 20, "host memory grew by {} KiB over 45 load/generate/drop cycles", growth / 1024);
}

#[test]
fn a_lost_device_is_an_error_and_a_new_session_works() {
    let Some(_) = common::gpu() else { return };
    let (config, tensors) = tiny();
    let f = files(&config, safetensors_bytes(&tensors));
    let gpu = Gpu::new_blocking(GpuOptions::default()).unwrap();
    let mut s = load(&gpu, &f).unwrap();
    gpu.device.destroy();
    let r =
        pollster::block_on(s.generate("a", &GenerateOptions { max_tokens: 4, ..Default::default() }, &mut |_| true));
    let e = r.expect_err("a destroyed device cannot generate");
    assert!(matches!(e, Error::DeviceLost(_) | Error::Gpu(_)), "{e}");
    let gpu2 = Gpu::new_blocking(GpuOptions::default()).unwrap();
    let mut s2 = load(&gpu2, &f).unwrap();
    assert!(pollster::block_on(s2.generate(
        "a",
        &GenerateOptions { max_tokens: 4, ..Default::default() },
        &mut |_| true
    ))
    .is_ok());
}

// ---- fuzzing (proptest; PROPTEST_CASES sets the executions per property, default 256) ----

fn fuzz_checkpoint(bytes: &[u8]) {
    if let Ok(ck) = Checkpoint::parse("fuzz", bytes) {
        let (config, _) = tiny();
        let cfg = Bd3lmConfig::from_json(&config).unwrap();
        let _ = blockdiff::model::bd3lm::Bd3lmWeights::from_checkpoint(&cfg, &ck);
        for name in ck.names() {
            if let Ok(shape) = ck.shape(&name) {
                let _ = ck.f32(&name, &shape);
            }
        }
    }
}

proptest! {
    #[test]
    fn fuzz_arbitrary_bytes_as_checkpoint(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz_checkpoint(&bytes);
    }

    #[test]
    fn fuzz_mutated_checkpoint(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                               cut in any::<prop::sample::Index>()) {
        let (_, tensors) = bd3lm_tensors(1, 8, 2, 16, 8, 4);
        let mut bytes = safetensors_bytes(&tensors);
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for (at, v) in flips {
            let i = at.index(header.min(bytes.len()));
            bytes[i] = v;
        }
        let keep = bytes.len() - cut.index(64);
        bytes.truncate(keep);
        fuzz_checkpoint(&bytes);
    }

    #[test]
    fn fuzz_configs(keys in proptest::collection::vec((0usize..16, prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            any::<bool>().prop_map(serde_json::Value::from),
            "[a-z]{0,6}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null)]), 0..16)) {
        const NAMES: [&str; 16] = ["hidden_dim", "n_heads", "n_blocks", "cond_dim", "vocab_size", "model_length",
            "block_size", "adaln", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "mask_token_id", "rope_theta"];
        let mut c = serde_json::Map::new();
        for (k, v) in keys {
            c.insert(NAMES[k].to_string(), v);
        }
        let c = serde_json::Value::Object(c);
        if let Ok(cfg) = Bd3lmConfig::from_json(&c) {
            prop_assert!(cfg.hidden_dim % cfg.n_heads == 0 && cfg.n_layers > 0);
        }
        if let Ok(cfg) = SdarConfig::from_json(&c) {
            prop_assert!((cfg.mask_token_id as usize) < cfg.vocab_size && cfg.n_heads % cfg.n_kv_heads == 0);
        }
        let _ = blockdiff::model::detect(&c);
    }

    #[test]
    fn fuzz_sampler_options(t in any::<f32>(), p in any::<f32>(), k in any::<u32>(), steps in proptest::option::of(any::<u32>()),
                            thr in proptest::option::of(any::<f32>()), per in proptest::option::of(any::<u32>()),
                            bound in any::<f32>(), max in 0usize..10_000) {
        let o = GenerateOptions { temperature: t, top_p: p, top_k: k, steps, threshold: thr, per_step: per,
                                  entropy_bound: bound, max_tokens: max, ..Default::default() };
        if o.validate(16).is_ok() {
            prop_assert!(t >= 0.0 && p > 0.0 && p <= 1.0 && max > 0 && bound > 0.0);
        }
    }

    #[test]
    fn fuzz_tokenizer_json(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        static TOK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let mut bytes = TOK.get_or_init(demo_tokenizer).clone();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(t) = blockdiff::tokenizer::Tokenizer::from_bytes(&bytes) {
            let _ = t.encode("To be, or not to be");
        }
    }
}
