//! Quality of quantized weights, measured: for f32, f16, q8 and q4 copies of a model (written by
//! `blockdiff convert`), the `score` NLL bound on held-out text with the same Monte-Carlo draws
//! (so differences are paired), and the top-1 agreement of logits with f32 on the golden inputs.
//!
//! ```sh
//! cargo run --release --example quality -- --samples 8
//! ```

use blockdiff::gpu::{DType, Gpu, GpuOptions};
use blockdiff::model::{convert, Attn, LoadOptions, Model, ModelFiles};
use blockdiff::{ScoreOptions, Session};
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// Model to convert and score (default: the bundled demo model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Held-out text (default: tests/data/hamlet-heldout.txt, never trained on).
    #[arg(long)]
    text: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    samples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Golden directories whose inputs give the top-1 agreement (default: ../shared/golden/*).
    #[arg(long)]
    golden: Vec<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dtypes(gpu: &Gpu) -> Vec<DType> {
    DType::ALL.into_iter().filter(|&d| d != DType::F16 || gpu.features.shader_f16).collect()
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
}

/// Top-1 agreement with f32 and the largest logit difference, over the golden `block_causal`
/// input of `dir`, for each dtype (weights quantized at load, exactly as `convert` does).
fn agreement(gpu: &std::sync::Arc<Gpu>, dir: &Path) -> blockdiff::Result<Vec<(DType, f64, f32)>> {
    let files = ModelFiles::from_dir(dir)?;
    let golden_bytes = std::fs::read(dir.join("golden.safetensors"))
        .map_err(|e| blockdiff::Error::File { path: dir.display().to_string(), message: e.to_string() })?;
    let golden = blockdiff::model::Checkpoint::parse("golden.safetensors", &golden_bytes)?;
    let ids = golden.ids("block_causal.input_ids")?;
    let logits = |dtype: DType| -> blockdiff::Result<Vec<f32>> {
        let model = Model::load(gpu, &files, &LoadOptions { dtype: Some(dtype), ..Default::default() })?;
        let ws = model.workspace(ids.len())?;
        Ok(pollster::block_on(model.forward_logits(&ws, &ids, Attn::BlockCausal, 0..ids.len(), false))?.0)
    };
    let base = logits(DType::F32)?;
    let v = base.len() / ids.len();
    let mut out = Vec::new();
    for dtype in dtypes(gpu) {
        let l = logits(dtype)?;
        let same = base.chunks(v).zip(l.chunks(v)).filter(|(a, b)| argmax(a) == argmax(b)).count();
        let diff = base.iter().zip(&l).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        out.push((dtype, same as f64 / ids.len() as f64, diff));
    }
    Ok(out)
}

fn main() -> blockdiff::Result<()> {
    let args = Args::parse();
    let gpu = Gpu::new_blocking(GpuOptions::default())?;
    println!("adapter: {}", gpu.adapter);
    let model = args.model.unwrap_or_else(|| root().join("models/bd3lm-shakespeare-tiny"));
    let text_path = args.text.unwrap_or_else(|| root().join("tests/data/hamlet-heldout.txt"));
    let text = std::fs::read_to_string(&text_path)
        .map_err(|e| blockdiff::Error::File { path: text_path.display().to_string(), message: e.to_string() })?;
    let tmp = std::env::temp_dir().join(format!("blockdiff-quality-{}", std::process::id()));
    let mut report = serde_json::json!({"adapter": gpu.adapter.to_string(), "model": model.display().to_string(),
        "text": text_path.display().to_string(), "samples": args.samples, "seed": args.seed});

    println!(
        "\n## Score on {} ({} samples, seed {}, same draws for every type)",
        text_path.display(),
        args.samples,
        args.seed
    );
    println!(
        "| weights | file MB | NLL bound (nats/token) | perplexity bound | vs f32 (paired) |\n|---|---|---|---|---|"
    );
    let mut rows = Vec::new();
    let mut base: Option<blockdiff::Score> = None;
    for dtype in dtypes(&gpu) {
        let dir = tmp.join(dtype.name());
        convert::convert_dir(&model, &dir, dtype)?;
        let mb = std::fs::metadata(dir.join("model.safetensors")).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let files = ModelFiles::from_dir(&dir)?;
        // q8/q4 directories load as their own type with no option; f32/f16 are asked for.
        let ask = if dtype.quant().is_some() { None } else { Some(dtype) };
        let mut session = Session::load(&gpu, &files, &LoadOptions { dtype: ask, ..Default::default() })?;
        assert_eq!(session.info().dtype, dtype);
        let s = pollster::block_on(session.score(&text, &ScoreOptions { samples: args.samples, seed: args.seed }))?;
        let versus = match &base {
            None => "—".to_string(),
            Some(b) => {
                // Paired: the same masks and times, so the per-sample differences are small.
                let d: Vec<f64> = s.per_sample.iter().zip(&b.per_sample).map(|(x, y)| x - y).collect();
                let n = d.len() as f64;
                let mean = d.iter().sum::<f64>() / n;
                let se = if d.len() > 1 {
                    (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
                } else {
                    0.0
                };
                format!("{:+.2} % ppl ({:+.4} ± {:.4} nats)", (mean.exp() - 1.0) * 100.0, mean, se)
            }
        };
        println!("| {dtype} | {mb:.2} | {:.4} ± {:.4} | {:.2} | {versus} |", s.nll, s.std_err, s.perplexity);
        rows.push(serde_json::json!({"dtype": dtype.name(), "file_mb": mb, "nll": s.nll, "std_err": s.std_err,
            "perplexity": s.perplexity, "per_sample": s.per_sample, "vs_f32": versus}));
        if base.is_none() {
            base = Some(s);
        }
    }
    report["score"] = serde_json::json!(rows);
    let _ = std::fs::remove_dir_all(&tmp);

    let golden = if args.golden.is_empty() {
        ["bd3lm-tiny-random", "sdar-tiny-random"]
            .iter()
            .map(|g| root().join("../shared/golden").join(g))
            .filter(|p| p.exists())
            .collect()
    } else {
        args.golden
    };
    let mut agree = Vec::new();
    for dir in golden {
        println!("\n## Top-1 agreement with f32 on {} (block_causal input)", dir.display());
        println!("| weights | top-1 agreement | max abs logit diff |\n|---|---|---|");
        for (dtype, frac, diff) in agreement(&gpu, &dir)? {
            println!("| {dtype} | {:.1} % | {diff:.2e} |", frac * 100.0);
            agree.push(serde_json::json!({"golden": dir.display().to_string(), "dtype": dtype.name(), "top1": frac, "max_abs_diff": diff}));
        }
    }
    report["top1_agreement"] = serde_json::json!(agree);
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap_or_default())
            .map_err(|e| blockdiff::Error::File { path: path.display().to_string(), message: e.to_string() })?;
    }
    Ok(())
}
