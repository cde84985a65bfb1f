//! The bundled demo model (trained by tools/train): it loads like a released checkpoint, its
//! tokenizer reproduces the trainer's ids, the runtime's likelihood bound agrees with the
//! trainer's on held-out Hamlet within Monte-Carlo error, and it generates text.

mod common;
use blockdiff::model::LoadOptions;
use blockdiff::{gpu::DType, GenerateOptions, ScoreOptions, Session, Strategy};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn session(dtype: DType) -> Option<Session> {
    let gpu = common::gpu()?;
    Some(
        Session::load_dir(
            &gpu,
            root().join("models/bd3lm-shakespeare-tiny"),
            &LoadOptions { dtype: Some(dtype), ..Default::default() },
        )
        .unwrap(),
    )
}

#[test]
fn score_reproduces_the_trainers_held_out_bound() {
    let Some(mut s) = session(DType::F32) else { return };
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/data/demo_trainer_score.json")).unwrap()).unwrap();
    let text = data["text"].as_str().unwrap();
    let want_ids: Vec<u32> = data["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(s.tokenizer.encode(text).unwrap(), want_ids, "tokenizer disagrees with the trainer's");
    let samples = 16;
    let got = pollster::block_on(s.score(text, &ScoreOptions { samples, seed: 7 })).unwrap();
    let trainer = data["nll_per_token"].as_f64().unwrap();
    let trainer_se = data["std_err"].as_f64().unwrap();
    // The 1/t weight makes per-sample values heavy-tailed, so the spread of a 16-sample run is
    // taken as the larger of its own standard error and the trainer's measured spread of
    // 64-sample runs scaled to 16 samples.
    let chunk_std =
        data["chunk_std"].as_f64().unwrap() * (data["chunk_size"].as_f64().unwrap() / samples as f64).sqrt();
    let spread = got.std_err.max(chunk_std);
    let z = (got.nll - trainer).abs() / (spread.powi(2) + trainer_se.powi(2)).sqrt();
    println!(
        "runtime {:.4} ± {:.4} ({samples} samples) vs trainer {trainer:.4} ± {trainer_se:.4} ({} samples): z = {z:.2}",
        got.nll, got.std_err, data["n_samples"]
    );
    assert_eq!(got.tokens, data["n_tokens"].as_u64().unwrap() as usize);
    assert!(z < 4.0, "the runtime's bound disagrees with the trainer's");
}

#[test]
fn generates_shakespeare_flavoured_text() {
    let Some(mut s) = session(DType::F32) else { return };
    let o =
        GenerateOptions { strategy: Strategy::Confidence, max_tokens: 48, seed: 1, top_p: 0.9, ..Default::default() };
    let g = pollster::block_on(s.generate("ROMEO:", &o, &mut |_| true)).unwrap();
    println!("{}", g.text);
    assert!(!g.text.trim().is_empty());
    // A trained model writes mostly real words: most whitespace-separated pieces are alphabetic.
    let words: Vec<&str> = g.text.split_whitespace().collect();
    let alpha = words.iter().filter(|w| w.chars().any(|c| c.is_alphabetic())).count();
    assert!(alpha * 10 >= words.len() * 7, "{}", g.text);
}
