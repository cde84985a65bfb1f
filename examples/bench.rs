//! Benchmarks on the current adapter: kernel throughput, forward times, memory, generation speed
//! per strategy, KV cache vs recompute, f16 vs f32. Prints a table and writes JSON.
//!
//! ```sh
//! cargo run --release --example bench -- --json bench.json
//! ```
//! On a software adapter (lavapipe) the BD3-LM-small shape takes minutes: `--small-blocks 1`
//! keeps it short, `--kv-tokens 256` shortens the cache-vs-recompute run.

use blockdiff::gpu::{DType, Gpu, GpuMatrix, GpuOptions};
use blockdiff::kernels::attention::{Attention, Mask};
use blockdiff::kernels::elementwise::View;
use blockdiff::kernels::matmul::{Activation, Epilogue, Matmul};
use blockdiff::kernels::rope::RopeTable;
use blockdiff::model::{synthetic, Attn, LoadOptions, ModelFiles};
use blockdiff::{GenerateOptions, Session, Strategy};
use clap::Parser;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Models to run: demo, medium, small.
    #[arg(long, value_delimiter = ',', default_value = "demo,medium,small")]
    models: Vec<String>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Tokens generated in the KV-cache-vs-recompute comparison (medium model, block 16).
    #[arg(long, default_value_t = 1024)]
    kv_tokens: usize,
    /// Blocks generated per strategy on the BD3-LM-small shape.
    #[arg(long, default_value_t = 2)]
    small_blocks: usize,
    /// Tokens generated per strategy on the demo and medium models.
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    /// Weight types to run (f16 only where the adapter has SHADER_F16).
    #[arg(long, value_delimiter = ',', default_value = "f32,f16,q8,q4")]
    dtypes: Vec<String>,
    /// Before/after, side by side in one run, on these models (e.g. `demo,medium`), then exit:
    /// "before" = fixed 32-row matmul tiles and kernel parameters in a uniform buffer (as in the
    /// baseline), "after" = rows fitted to each matmul and (on lavapipe) parameters in storage.
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
    /// Skip the kernel micro-benchmarks.
    #[arg(long)]
    no_kernels: bool,
}

fn secs<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    f(); // warm-up (pipeline compilation)
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn matmul_gflops(gpu: &Arc<Gpu>, m: usize, k: usize, n: usize, dtype: DType) -> f64 {
    let x = gpu.upload_f32("x", &synthetic::rand_vec(m * k, 1, 1.0)).expect("upload");
    let w = GpuMatrix::upload(gpu, "w", n, k, &synthetic::rand_vec(n * k, 2, 0.1), dtype).expect("upload");
    let y = gpu.storage("y", (m * n * 4) as u64).expect("alloc");
    let t = secs(3, || {
        let mut rec = gpu.recorder();
        Matmul {
            x: &x,
            x_offset: 0,
            x_stride: k,
            m,
            w: &w,
            bias: None,
            act: Activation::None,
            epi: Epilogue::Store,
            y: &y,
            y_offset: 0,
            y_stride: n,
        }
        .encode(&mut rec)
        .expect("encode");
        rec.submit().expect("submit");
        gpu.wait_idle().expect("wait");
    });
    2.0 * (m * k * n) as f64 / t / 1e9
}

fn attention_ms(gpu: &Arc<Gpu>, cached: usize) -> f64 {
    let (heads, d, l) = (12, 64, 16);
    let cap = cached + l;
    let q = gpu.upload_f32("q", &synthetic::rand_vec(l * heads * d, 3, 1.0)).expect("upload");
    let k = gpu.upload_f32("k", &synthetic::rand_vec(cap * heads * d, 4, 1.0)).expect("upload");
    let v = gpu.upload_f32("v", &synthetic::rand_vec(cap * heads * d, 5, 1.0)).expect("upload");
    let o = gpu.storage("o", (l * heads * d * 4) as u64).expect("alloc");
    let table = RopeTable::new(gpu, d, 10000.0, cap).expect("rope");
    let view = |buf| View { buf, offset: 0, stride: heads * d };
    1e3 * secs(3, || {
        let mut rec = gpu.recorder();
        Attention {
            q: view(&q),
            k: view(&k),
            v: view(&v),
            out: view(&o),
            n_q: l,
            n_kv: cap,
            heads,
            kv_heads: heads,
            head_dim: d,
            kv_start: 0,
            kv_cap: cap,
            q_base: cached,
            mask: Mask::BlockCausal { block: l },
            rope: Some(&table),
        }
        .encode(&mut rec)
        .expect("encode");
        rec.submit().expect("submit");
        gpu.wait_idle().expect("wait");
    })
}

/// One sampling dispatch over 16 rows of a 50258-token vocabulary.
fn sample_ms(gpu: &Arc<Gpu>, top_p: f32) -> f64 {
    use blockdiff::kernels::sample::{SampleRows, SampleSettings};
    let (rows, vocab) = (16, 50258);
    let logits = gpu.upload_f32("logits", &synthetic::rand_vec(rows * vocab, 9, 4.0)).expect("upload");
    let out = gpu.storage("samples", (rows * 20) as u64).expect("alloc");
    let settings =
        SampleSettings { temperature: 1.0, top_p, top_k: 0, seed: 1, step: 0, pos_base: 0, mask_id: u32::MAX };
    1e3 * secs(3, || {
        let mut rec = gpu.recorder();
        SampleRows { logits: &logits, rows, vocab, stride: vocab, settings, out: &out }
            .encode(&mut rec)
            .expect("encode");
        rec.submit().expect("submit");
        gpu.wait_idle().expect("wait");
    })
}

/// A model directory's files: the bundled demo model, or random weights in the released layout
/// with the demo tokenizer (only its ids matter for speed).
fn model_files(name: &str) -> Option<ModelFiles> {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/bd3lm-shakespeare-tiny");
    let tokenizer = std::fs::read(demo.join("tokenizer.json")).ok();
    let shared_gpt2 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tokenizers/gpt2/tokenizer.json");
    let (config, weights, tok) = match name {
        "demo" => return ModelFiles::from_dir(&demo).ok(),
        "medium" => {
            let (c, w) = synthetic::random_bd3lm(4, 256, 4, 8192, 1024, 16);
            (c, w, tokenizer.clone().or_else(|| std::fs::read(&shared_gpt2).ok()))
        }
        "small" => {
            let (c, w) = synthetic::random_bd3lm(12, 768, 12, 50258, 1024, 16);
            (c, w, std::fs::read(&shared_gpt2).ok().or(tokenizer))
        }
        _ => return None,
    };
    ModelFiles::from_bytes(name, &serde_json::to_vec(&config).ok()?, weights, tok).ok()
}

/// Forward time of a commit (one block into the cache) and of a denoising step (forward +
/// logits), with `fill` tokens already cached.
fn forward_ms(session: &Session, fill: usize) -> (f64, f64) {
    let m = &session.model;
    let info = m.info();
    let l = info.block_size;
    let ws = m.workspace(l).expect("workspace");
    let mut cache = m.new_cache().expect("cache");
    let ids: Vec<u32> = (0..l as u32).map(|i| 5 + i).collect();
    let gpu = m.gpu();
    for _ in 0..fill / l {
        pollster::block_on(m.forward_logits(&ws, &ids, Attn::Cached(&cache), 0..0, false)).expect("fill");
        cache.commit(l);
    }
    let run = |logits: bool| {
        1e3 * secs(3, || {
            gpu.write(&ws.ids, 0, bytemuck::cast_slice(&ids));
            let mut rec = gpu.recorder();
            m.encode_forward(&mut rec, &ws, l, Attn::Cached(&cache), None).expect("forward");
            if logits {
                m.encode_logits(&mut rec, &ws, 0, l).expect("logits");
            }
            rec.submit().expect("submit");
            gpu.wait_idle().expect("wait");
        })
    };
    (run(false), run(true))
}

fn strategies() -> Vec<(&'static str, GenerateOptions)> {
    let base = GenerateOptions { stop_at_eos: false, entropy_guard: false, seed: 7, ..Default::default() };
    vec![
        ("first-hitting", GenerateOptions { strategy: Strategy::FirstHitting, ..base.clone() }),
        ("ddpm (steps = L/2)", GenerateOptions { strategy: Strategy::Ddpm, ..base.clone() }),
        ("confidence (steps = L/4)", GenerateOptions { strategy: Strategy::Confidence, ..base.clone() }),
        (
            "confidence (p >= 0.9)",
            GenerateOptions { strategy: Strategy::Confidence, threshold: Some(0.9), ..base.clone() },
        ),
        ("entropy-bounded (1 nat)", GenerateOptions { strategy: Strategy::EntropyBounded, ..base }),
    ]
}

fn generate(session: &mut Session, o: &GenerateOptions) -> Value {
    let g = pollster::block_on(session.generate("", o, &mut |_| true)).expect("generate");
    let s = &g.stats;
    json!({"tokens": s.generated_tokens, "seconds": s.elapsed_ms / 1e3, "tokens_per_second": s.tokens_per_second,
           "nfe": s.nfe, "tokens_per_forward": s.tokens_per_forward, "commit_forwards": s.commit_forwards})
}

/// Before/after, measured in one run on two devices that differ only in the tuned settings (f32
/// weights).
fn compare(args: &Args) -> Value {
    let before =
        Gpu::new_blocking(GpuOptions { matmul_rows: Some(8), params_in_storage: Some(false), ..Default::default() })
            .expect("GPU adapter");
    let after = Gpu::new_blocking(GpuOptions::default()).expect("GPU adapter");
    println!("adapter: {}\n", after.adapter);
    println!(
        "## Before/after (f32): before = fixed 32-row matmul tiles, uniform parameters, workgroup-memory reductions; \
         after = rows fitted, per-step parameters in {}, sampler reductions {}",
        if after.params_in_storage() { "a storage buffer" } else { "a uniform buffer" },
        if blockdiff::kernels::sample::uses_subgroups(&after) { "with subgroups" } else { "in workgroup memory" }
    );
    println!("| measurement | before | after | after/before speed |\n|---|---|---|---|");
    let mut rows = Vec::new();
    let mut row = |what: String, b: f64, a: f64, higher_is_better: bool, unit: &str| {
        let ratio = if higher_is_better { a / b } else { b / a };
        println!("| {what} | {b:.2} {unit} | {a:.2} {unit} | {ratio:.2}x |");
        rows.push(json!({"measurement": what, "before": b, "after": a, "speedup": ratio, "unit": unit}));
    };
    for (k, n) in [(768, 2304), (768, 50258)] {
        let b = matmul_gflops(&before, 16, k, n, DType::F32);
        let a = matmul_gflops(&after, 16, k, n, DType::F32);
        row(format!("matmul 16x{k} · {k}x{n}"), b, a, true, "GFLOP/s");
    }
    // The sampler alone, and the share of subgroups in it (after's settings without them).
    let no_sg = Gpu::new_blocking(GpuOptions { allow_subgroups: false, ..Default::default() }).expect("GPU adapter");
    for (top_p, label) in [(1.0, "no truncation"), (0.9, "top-p 0.9")] {
        let b = sample_ms(&before, top_p);
        let a = sample_ms(&after, top_p);
        let n = sample_ms(&no_sg, top_p);
        row(format!("sampling 16 rows x 50258, {label}"), b, a, false, "ms");
        row(format!("sampling 16 rows x 50258, {label}: after without subgroups"), b, n, false, "ms");
    }
    for name in &args.compare {
        let Some(files) = model_files(name) else { continue };
        let load = |gpu: &Arc<Gpu>| {
            Session::load(gpu, &files, &LoadOptions { dtype: Some(DType::F32), ..Default::default() }).expect("load")
        };
        let (mut sb, mut sa) = (load(&before), load(&after));
        let fill = sa.info().context / 2;
        let (cb, db) = forward_ms(&sb, fill);
        let (ca, da) = forward_ms(&sa, fill);
        row(format!("{name}: commit forward (cache half full)"), cb, ca, false, "ms");
        row(format!("{name}: denoising step (forward + logits)"), db, da, false, "ms");
        let l = sa.info().block_size as u32;
        let o = GenerateOptions {
            strategy: Strategy::Confidence,
            steps: Some((l / 4).max(1)),
            max_tokens: if name == "medium" && args.kv_tokens > 0 { args.kv_tokens } else { args.gen_tokens },
            stop_at_eos: false,
            entropy_guard: false,
            seed: 7,
            ..Default::default()
        };
        let gb = generate(&mut sb, &o)["tokens_per_second"].as_f64().unwrap_or(0.0);
        let ga = generate(&mut sa, &o)["tokens_per_second"].as_f64().unwrap_or(0.0);
        row(
            format!("{name}: generation, {} tokens, confidence L/4 steps, KV cache", o.max_tokens),
            gb,
            ga,
            true,
            "tokens/s",
        );
    }
    json!(rows)
}

fn main() {
    let args = Args::parse();
    if !args.compare.is_empty() {
        let report = json!({"compare": compare(&args)});
        if let Some(path) = args.json {
            std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap_or_default()).expect("write JSON");
        }
        return;
    }
    let gpu = Gpu::new_blocking(GpuOptions::default()).expect("GPU adapter");
    println!("adapter: {}", gpu.adapter);
    let mut report = json!({"adapter": gpu.adapter.to_string(), "shader_f16": gpu.features.shader_f16});
    let dtypes: Vec<DType> = args
        .dtypes
        .iter()
        .filter_map(|s| DType::parse(s))
        .filter(|&d| d != DType::F16 || gpu.features.shader_f16)
        .collect();

    if !args.no_kernels {
        println!("\n## Kernels (block of 16 rows)");
        println!("| shape | {} |", dtypes.iter().map(|d| format!("{d} GFLOP/s")).collect::<Vec<_>>().join(" | "));
        println!("|---|{}", "---|".repeat(dtypes.len()));
        let mut mm = Vec::new();
        for (k, n) in [(768, 2304), (768, 3072), (3072, 768), (768, 50258)] {
            let g: Vec<f64> = dtypes.iter().map(|&dt| matmul_gflops(&gpu, 16, k, n, dt)).collect();
            println!("| 16x{k} · {k}x{n} | {} |", g.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" | "));
            mm.push(json!({"m": 16, "k": k, "n": n, "gflops": dtypes.iter().zip(&g).map(|(d, v)| (d.to_string(), json!(v))).collect::<serde_json::Map<_,_>>()}));
        }
        println!("\n| attention, 12 heads x 64, block of 16 | ms |\n|---|---|");
        let mut att = Vec::new();
        for cached in [0, 256, 1024] {
            let ms = attention_ms(&gpu, cached);
            println!("| {cached} cached tokens | {ms:.2} |");
            att.push(json!({"cached": cached, "ms": ms}));
        }
        report["matmul"] = json!(mm);
        report["attention"] = json!(att);
    }

    let mut models = Vec::new();
    for name in &args.models {
        let Some(files) = model_files(name) else {
            println!("\n(model '{name}' not available, skipped)");
            continue;
        };
        println!("\n## Model: {name}");
        let mut entry = json!({"model": name});
        for &dtype in &dtypes {
            let t = Instant::now();
            let mut session =
                Session::load(&gpu, &files, &LoadOptions { dtype: Some(dtype), ..Default::default() }).expect("load");
            let load_s = t.elapsed().as_secs_f64();
            let info = session.info();
            let (wb, kb) = session.memory();
            let (commit_ms, step_ms) = forward_ms(&session, info.context / 2);
            println!(
                "{dtype}: {} layers, hidden {}, vocab {}, block {}: weights {:.1} MiB, KV cache {:.1} MiB, load {load_s:.1} s",
                info.layers,
                info.hidden,
                info.vocab_size,
                info.block_size,
                wb as f64 / 1048576.0,
                kb as f64 / 1048576.0
            );
            println!("{dtype}: commit forward {commit_ms:.1} ms, denoising step (forward + logits) {step_ms:.1} ms (cache half full)");
            let mut d = json!({"weights_mib": wb as f64 / 1048576.0, "kv_cache_mib": kb as f64 / 1048576.0,
                               "commit_forward_ms": commit_ms, "denoise_step_ms": step_ms, "load_s": load_s});
            // Generation per strategy (f32 only, or both on small runs).
            if dtype == DType::F32 || name != "small" {
                let l = info.block_size as u32;
                let tokens = if name == "small" { args.small_blocks * info.block_size } else { args.gen_tokens };
                println!("| {dtype} strategy | tokens/s | NFE | tokens/forward |\n|---|---|---|---|");
                let mut gens = serde_json::Map::new();
                for (label, mut o) in strategies() {
                    o.max_tokens = tokens;
                    match o.strategy {
                        Strategy::Ddpm => o.steps = Some((l / 2).max(1)),
                        Strategy::Confidence if o.threshold.is_none() => o.steps = Some((l / 4).max(1)),
                        _ => {}
                    }
                    if name == "small" && !matches!(o.strategy, Strategy::Confidence) {
                        continue; // keep the 12-layer run short on software adapters
                    }
                    let r = generate(&mut session, &o);
                    println!(
                        "| {label} | {:.2} | {} | {:.2} |",
                        r["tokens_per_second"].as_f64().unwrap_or(0.0),
                        r["nfe"],
                        r["tokens_per_forward"].as_f64().unwrap_or(0.0)
                    );
                    gens.insert(label.to_string(), r);
                }
                d["generation"] = Value::Object(gens);
            }
            // KV cache vs recompute on the medium model.
            if name == "medium" && dtype == DType::F32 && args.kv_tokens > 0 {
                let o = GenerateOptions {
                    strategy: Strategy::Confidence,
                    steps: Some(2),
                    max_tokens: args.kv_tokens,
                    stop_at_eos: false,
                    entropy_guard: false,
                    ..Default::default()
                };
                let cached = generate(&mut session, &o);
                let recomputed = generate(&mut session, &GenerateOptions { kv_cache: false, ..o });
                let ratio = cached["tokens_per_second"].as_f64().unwrap_or(0.0)
                    / recomputed["tokens_per_second"].as_f64().unwrap_or(f64::INFINITY);
                println!(
                    "KV cache vs recompute ({} tokens, block {}, confidence 2 steps/block): {:.2} vs {:.2} tokens/s => KV cache speedup: {ratio:.1}x",
                    args.kv_tokens,
                    info.block_size,
                    cached["tokens_per_second"].as_f64().unwrap_or(0.0),
                    recomputed["tokens_per_second"].as_f64().unwrap_or(0.0)
                );
                d["kv_cache"] = json!({"cached": cached, "recompute": recomputed, "speedup": ratio});
            }
            entry[dtype.to_string()] = d;
        }
        models.push(entry);
    }
    report["models"] = json!(models);
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap_or_default()).expect("write JSON");
        println!("\nwrote {}", path.display());
    }
}
