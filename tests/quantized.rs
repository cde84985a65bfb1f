//! Quantized and converted models: `convert` round trips, quantized directories load with no
//! flag and stay close to f32, dequantizing is exact, and sharded checkpoints load like one file.

mod common;
use blockdiff::gpu::DType;
use blockdiff::model::{convert, Attn, LoadOptions, Model, ModelFiles};
use blockdiff::{GenerateOptions, Session, Strategy};
use std::path::{Path, PathBuf};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/bd3lm-shakespeare-tiny")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("blockdiff-quantized-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Held-out ids (Hamlet, never trained on) with every third position masked.
fn input(files: &ModelFiles) -> Vec<u32> {
    let tok = blockdiff::tokenizer::Tokenizer::from_bytes(files.tokenizer.as_deref().unwrap()).unwrap();
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hamlet-heldout.txt"))
        .unwrap();
    let mut ids = tok.encode(&text).unwrap();
    ids.truncate(128);
    for (i, t) in ids.iter_mut().enumerate() {
        if i % 3 == 2 {
            *t = 4095; // [MASK]
        }
    }
    ids
}

fn logits(dir: &Path, dtype: Option<DType>) -> (DType, Vec<f32>) {
    let gpu = common::gpu().unwrap();
    let files = ModelFiles::from_dir(dir).unwrap();
    let ids = input(&ModelFiles::from_dir(demo()).unwrap());
    let model = Model::load(&gpu, &files, &LoadOptions { dtype, ..Default::default() }).unwrap();
    let ws = model.workspace(ids.len()).unwrap();
    let (l, _) = pollster::block_on(model.forward_logits(&ws, &ids, Attn::BlockCausal, 0..ids.len(), false)).unwrap();
    (model.info().dtype, l)
}

fn top1_agreement(a: &[f32], b: &[f32], vocab: usize) -> f64 {
    let argmax =
        |r: &[f32]| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &v)| if v > m.1 { (i, v) } else { m }).0;
    let rows = a.len() / vocab;
    a.chunks(vocab).zip(b.chunks(vocab)).filter(|(x, y)| argmax(x) == argmax(y)).count() as f64 / rows as f64
}

#[test]
fn converted_models_load_without_flags_and_track_f32() {
    if common::gpu().is_none() {
        return;
    }
    let (_, base) = logits(&demo(), Some(DType::F32));
    let mut seen = Vec::new();
    for (to, min_agree) in [(DType::Q8, 0.95), (DType::Q4, 0.75)] {
        let dir = tmp(to.name());
        let report = convert::convert_dir(&demo(), &dir, to).unwrap();
        assert_eq!(report.converted, 18, "4 layers x 4 matrices + embedding + output");
        let file = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
        let orig = std::fs::metadata(demo().join("model.safetensors")).unwrap().len();
        assert!(file * 3 < orig, "{to}: {file} bytes is not much smaller than {orig}");
        assert!(dir.join("tokenizer.json").exists());

        let (dtype, l) = logits(&dir, None);
        assert_eq!(dtype, to, "a {to} directory loads as {to} with no option");
        let agree = top1_agreement(&base, &l, 4096);
        eprintln!("{to}: top-1 agreement with f32 {:.1} %", agree * 100.0);
        assert!(agree >= min_agree, "{to}: top-1 agreement {agree}");

        // Dequantizing is exact: an f32 conversion of the quantized directory computes the same.
        let back = tmp(&format!("{}-f32", to.name()));
        convert::convert_dir(&dir, &back, DType::F32).unwrap();
        let (_, lb) = logits(&back, Some(DType::F32));
        let scale = l.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert!(common::max_abs_diff(&l, &lb) <= 1e-4 * scale, "{to} -> f32 changed the logits");
        seen.push(l);
        let _ = std::fs::remove_dir_all(&back);

        // And it generates through the whole session API.
        let gpu = common::gpu().unwrap();
        let mut s = Session::load_dir(&gpu, &dir, &LoadOptions::default()).unwrap();
        let o = GenerateOptions {
            max_tokens: 16,
            strategy: Strategy::Confidence,
            steps: Some(2),
            seed: 3,
            ..Default::default()
        };
        let g = pollster::block_on(s.generate("ROMEO:", &o, &mut |_| true)).unwrap();
        assert_eq!(g.stats.generated_tokens, 16);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(common::max_abs_diff(&seen[0], &seen[1]) > 0.0, "q8 and q4 must differ");
}

#[test]
fn quantizing_at_load_matches_converting() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tmp("q4-load");
    convert::convert_dir(&demo(), &dir, DType::Q4).unwrap();
    let (_, converted) = logits(&dir, None);
    let (dtype, at_load) = logits(&demo(), Some(DType::Q4));
    assert_eq!(dtype, DType::Q4);
    // The same quantizer runs in both paths; only `convert`'s f16 copy of the host-side adaLN
    // weights differs (relative rounding 2^-11), so the logits agree to well under a step of q4.
    let scale = converted.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(&converted, &at_load);
    eprintln!("q4 converted vs quantized at load: max abs logit diff {diff:.2e} (scale {scale:.1})");
    assert!(diff <= 1e-2 * scale, "{diff}");
    assert!(top1_agreement(&converted, &at_load, 4096) >= 0.98);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits `dir`'s model.safetensors into two shards plus an index.
fn shard(dir: &Path, out: &Path) {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let ck = blockdiff::model::Checkpoint::parse("m", &bytes).unwrap();
    let names = ck.names();
    let half = names.len() / 2;
    let mut map = serde_json::Map::new();
    std::fs::create_dir_all(out).unwrap();
    for (i, part) in [&names[..half], &names[half..]].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = part
            .iter()
            .map(|n| {
                let shape = ck.shape(n).unwrap();
                map.insert(n.clone(), serde_json::json!(file));
                (n.clone(), shape.clone(), ck.f32(n, &shape).unwrap())
            })
            .collect();
        std::fs::write(out.join(&file), blockdiff::model::synthetic::safetensors_bytes(&tensors)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(out.join("model.safetensors.index.json"), index.to_string()).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), out.join(f)).unwrap();
    }
}

#[test]
fn sharded_checkpoints_load_like_one_file() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tmp("sharded");
    shard(&demo(), &dir);
    let files = ModelFiles::from_dir(&dir).unwrap();
    match &files.weights {
        blockdiff::model::Weights::Sources(s) => assert_eq!(s.len(), 2),
        _ => panic!("shards are read by range"),
    }
    assert_eq!(logits(&dir, Some(DType::F32)).1, logits(&demo(), Some(DType::F32)).1);

    // An index naming a tensor no shard holds, and a shard path outside the directory.
    let index_path = dir.join("model.safetensors.index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["weight_map"]["backbone.extra"] = serde_json::json!("model-00001-of-00002.safetensors");
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = ModelFiles::from_dir(&dir).unwrap().checkpoint().err().unwrap().to_string();
    assert!(e.contains("backbone.extra"), "{e}");
    index["weight_map"]["backbone.extra"] = serde_json::json!("../elsewhere.safetensors");
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = ModelFiles::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains("file name in the model directory"), "{e}");
    // A missing shard file.
    index["weight_map"]["backbone.extra"] = serde_json::json!("model-00009-of-00009.safetensors");
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = ModelFiles::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains("model-00009-of-00009.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
