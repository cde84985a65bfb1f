//! The `blockdiff` command line: generate, score, probe, chat, info, verify, convert.

use blockdiff::gpu::{DType, Gpu, GpuMatrix, GpuOptions};
use blockdiff::kernels::matmul::{self, Activation, Epilogue, Matmul};
use blockdiff::model::{LoadOptions, ModelFiles};
use blockdiff::{Event, GenerateOptions, ScoreOptions, Session, Strategy};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "blockdiff", version, about = "Block diffusion language models on WebGPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    F32,
    F16,
    Q8,
    Q4,
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        match p {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Q8 => DType::Q8,
            Precision::Q4 => DType::Q4,
        }
    }
}

/// The model every command uses by default: the bundled demo model.
fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/bd3lm-shakespeare-tiny")
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, default_value_os_t = default_model())]
    model: PathBuf,
    /// GPU weight precision (default: the stored q8/q4 of a converted model, else f16 when the
    /// adapter has SHADER_F16, else f32). q8/q4 on an unquantized model quantize at load.
    #[arg(long, value_enum)]
    precision: Option<Precision>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    FirstHitting,
    Ddpm,
    Confidence,
    EntropyBounded,
}

#[derive(clap::Args)]
struct SamplingArgs {
    /// Unmasking strategy inside a block.
    #[arg(long, value_enum, default_value = "first-hitting")]
    strategy: StrategyArg,
    /// Denoising steps per block (ddpm, confidence); default: the block length.
    #[arg(long)]
    steps: Option<u32>,
    /// Confidence: commit every position with probability >= p (at least one per step).
    #[arg(long)]
    threshold: Option<f32>,
    /// Confidence: commit exactly this many positions per step.
    #[arg(long)]
    per_step: Option<u32>,
    /// Entropy-bounded: summed entropy (nats) allowed per step.
    #[arg(long, default_value_t = 1.0)]
    entropy_bound: f32,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SamplingArgs {
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            strategy: match self.strategy {
                StrategyArg::FirstHitting => Strategy::FirstHitting,
                StrategyArg::Ddpm => Strategy::Ddpm,
                StrategyArg::Confidence => Strategy::Confidence,
                StrategyArg::EntropyBounded => Strategy::EntropyBounded,
            },
            steps: self.steps,
            threshold: self.threshold,
            per_step: self.per_step,
            entropy_bound: self.entropy_bound,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate text block by block, streaming it as blocks are committed.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[arg(long, default_value = "")]
        prompt: String,
        #[arg(long, default_value_t = 200)]
        max_tokens: usize,
        /// Stop at this string (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        /// Keep going past EOS.
        #[arg(long)]
        ignore_eos: bool,
        /// Print every denoising step of every block (masked slots as ░).
        #[arg(long)]
        show_steps: bool,
        /// Print the statistics as JSON on stdout after the text.
        #[arg(long)]
        json: bool,
    },
    /// The block-diffusion NLL upper bound (and perplexity bound) of a text.
    Score {
        #[command(flatten)]
        model: ModelArgs,
        /// The text (or use --file).
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 16)]
        samples: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Multi-turn chat in the terminal (chat template + KV-cache reuse across turns).
    /// Commands: /reset, /exit.
    Chat {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// System prompt.
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 256)]
        max_tokens: usize,
    },
    /// Per-position top-k predictions for N masks after a prompt.
    Probe {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value = "")]
        prompt: String,
        #[arg(long, default_value_t = 16)]
        masks: usize,
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        #[arg(long)]
        json: bool,
    },
    /// Print the GPU adapter, its limits and features, and a matmul self-check with GFLOP/s.
    Info,
    /// Compare a golden directory (config.json, model.safetensors, golden.json,
    /// golden.safetensors) against the GPU path and the CPU reference.
    Verify {
        dir: PathBuf,
        /// GPU weight precision (f16 needs SHADER_F16).
        #[arg(long, value_enum, default_value = "f32")]
        precision: Precision,
        /// Skip the CPU reference.
        #[arg(long)]
        no_cpu: bool,
    },
    /// Rewrite a model directory's matmul weights as f16, q8 or q4 (block-wise, one f16 scale
    /// per 32 weights; q4 also a minimum) into OUTPUT, with a `quantization` block in its
    /// config.json; tokenizer and chat files are copied.
    Convert {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, value_enum)]
        to: Precision,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Verify { dir, precision, no_cpu } => verify(dir, precision.into(), !no_cpu),
        Command::Generate { model, sampling, prompt, max_tokens, stop, ignore_eos, show_steps, json } => {
            let opts = GenerateOptions {
                max_tokens,
                stop,
                stop_at_eos: !ignore_eos,
                stream_steps: show_steps,
                ..sampling.options()
            };
            generate(model, &prompt, &opts, json)
        }
        Command::Score { model, text, file, samples, seed, json } => score(model, text, file, samples, seed, json),
        Command::Probe { model, prompt, masks, top_k, json } => probe(model, &prompt, masks, top_k, json),
        Command::Chat { model, sampling, system, max_tokens } => chat(model, sampling, system, max_tokens),
        Command::Convert { input, output, to } => convert(&input, &output, to.into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open_gpu() -> blockdiff::Result<Arc<Gpu>> {
    Gpu::new_blocking(GpuOptions::default())
}

/// Times `Y = X W^T` for an `m x k` by `k x n` product and checks a corner against the CPU.
fn bench_matmul(gpu: &Arc<Gpu>, m: usize, k: usize, n: usize, dtype: DType) -> blockdiff::Result<(f64, f32)> {
    let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 13.0).collect();
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 5 % 11) as f32 - 5.0) / 22.0).collect();
    let xb = gpu.upload_f32("x", &x)?;
    let wm = GpuMatrix::upload(gpu, "w", n, k, &w, dtype)?;
    let yb = gpu.storage("y", (m * n * 4) as u64)?;
    let run = || -> blockdiff::Result<()> {
        let mut rec = gpu.recorder();
        Matmul {
            x: &xb,
            x_offset: 0,
            x_stride: k,
            m,
            w: &wm,
            bias: None,
            act: Activation::None,
            epi: Epilogue::Store,
            y: &yb,
            y_offset: 0,
            y_stride: n,
        }
        .encode(&mut rec)?;
        rec.submit()?;
        gpu.wait_idle()
    };
    run()?; // warm-up: pipeline compilation
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    // Check the first 4 columns of every row against the CPU twin.
    let got = gpu.read_f32_blocking(&yb, 0, m * n)?;
    let cols = 4.min(n);
    let mut want = vec![0.0; m * cols];
    let wq = dtype.as_computed(&w[..cols * k], cols, k);
    matmul::cpu(&x, k, m, &wq, cols, k, None, Activation::None, 0, None, &mut want, cols);
    let err = (0..m)
        .flat_map(|r| (0..cols).map(move |c| (r, c)))
        .map(|(r, c)| (got[r * n + c] - want[r * cols + c]).abs())
        .fold(0.0, f32::max);
    Ok((2.0 * (m * k * n) as f64 / secs / 1e9, err))
}

fn info() -> blockdiff::Result<ExitCode> {
    let gpu = open_gpu()?;
    println!("adapter: {}", gpu.adapter);
    let l = &gpu.limits;
    println!(
        "limits: storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
        l.max_storage_buffer_binding_size >> 20,
        l.max_buffer_size >> 20,
        l.max_compute_workgroup_storage_size >> 10,
        l.max_compute_invocations_per_workgroup,
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "features: shader-f16 {}, subgroups {}, timestamps {}",
        gpu.features.shader_f16, gpu.features.subgroups, gpu.features.timestamps
    );
    println!(
        "matmul path: {}",
        if gpu.prefers_tiled() { "workgroup-memory tiles" } else { "register tiles (CPU adapter)" }
    );
    let mut dtypes = vec![DType::F32];
    if gpu.features.shader_f16 {
        dtypes.push(DType::F16);
    }
    let mut ok = true;
    for dtype in dtypes {
        for (m, k, n) in [(16, 768, 2304), (16, 768, 50258)] {
            let (gflops, err) = bench_matmul(&gpu, m, k, n, dtype)?;
            let pass = err < 1e-3;
            ok &= pass;
            println!(
                "matmul {m}x{k} * {k}x{n} ({dtype} weights): {gflops:.2} GFLOP/s, max abs err vs CPU {err:.1e} {}",
                if pass { "ok" } else { "FAIL" }
            );
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn verify(dir: PathBuf, dtype: DType, cpu: bool) -> blockdiff::Result<ExitCode> {
    let gpu = open_gpu()?;
    println!("adapter: {}", gpu.adapter);
    let files = ModelFiles::from_dir(&dir)?;
    let golden_path = dir.join("golden.safetensors");
    let golden = std::fs::read(&golden_path)
        .map_err(|e| blockdiff::Error::File { path: golden_path.display().to_string(), message: e.to_string() })?;
    let report = pollster::block_on(blockdiff::verify::verify(&gpu, &files, &golden, dtype, cpu))?;
    for c in &report.checks {
        println!(
            "{:28} {:8} max abs err {:.3e}  tol {:.1e}  {}",
            c.entry,
            c.path,
            c.max_abs_err,
            c.tolerance,
            if c.passed() { "ok" } else { "FAIL" }
        );
    }
    println!("verify: {} passed, {} failed", report.passed(), report.failed());
    Ok(if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn load_session(args: &ModelArgs) -> blockdiff::Result<Session> {
    let gpu = open_gpu()?;
    let options = LoadOptions { dtype: args.precision.map(Into::into), ..Default::default() };
    Session::load_dir(&gpu, &args.model, &options)
}

fn generate(args: ModelArgs, prompt: &str, opts: &GenerateOptions, json: bool) -> blockdiff::Result<ExitCode> {
    let mut session = load_session(&args)?;
    let info = session.info();
    let bar = indicatif::ProgressBar::new(opts.max_tokens as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} tokens {per_sec} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    eprintln!(
        "model: {} ({} layers, hidden {}, block {}, {} weights) on {}",
        args.model.display(),
        info.layers,
        info.hidden,
        info.block_size,
        info.dtype,
        session.gpu().adapter
    );
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let tokenizer_mask = info.mask_id;
    let mut produced = 0u64;
    let mut on_event = |e: Event| {
        match e {
            Event::Block { text, tokens, .. } => {
                bar.suspend(|| {
                    print!("{text}");
                    let _ = std::io::stdout().flush();
                });
                produced += tokens.len() as u64;
                bar.set_position(produced);
            }
            Event::Step { block, step, tokens, mask_id, masked } => {
                let shown: Vec<String> = tokens
                    .iter()
                    .map(|&t| if t == mask_id || t == tokenizer_mask { "░".to_string() } else { format!("{t}") })
                    .collect();
                bar.suspend(|| eprintln!("block {block} step {step}: [{}] {masked} masked", shown.join(" ")));
            }
        }
        true
    };
    let g = pollster::block_on(session.generate(prompt, opts, &mut on_event))?;
    bar.finish_and_clear();
    println!();
    let s = &g.stats;
    eprintln!(
        "{} tokens in {:.2} s: {:.2} tokens/s, NFE {} ({:.2} tokens per forward), {} blocks, {} commit forwards, stop: {:?}",
        s.generated_tokens,
        s.elapsed_ms / 1e3,
        s.tokens_per_second,
        s.nfe,
        s.tokens_per_forward,
        s.blocks,
        s.commit_forwards,
        g.stop
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&g).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

fn score(
    args: ModelArgs,
    text: Option<String>,
    file: Option<PathBuf>,
    samples: usize,
    seed: u64,
    json: bool,
) -> blockdiff::Result<ExitCode> {
    let text = match (text, file) {
        (Some(t), None) => t,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| blockdiff::Error::File { path: f.display().to_string(), message: e.to_string() })?,
        _ => return Err(blockdiff::Error::Options("give exactly one of --text and --file".into())),
    };
    let mut session = load_session(&args)?;
    let s = pollster::block_on(session.score(&text, &ScoreOptions { samples, seed }))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    } else {
        println!(
            "NLL bound: {:.4} ± {:.4} nats/token over {} tokens ({} samples); perplexity bound {:.2}",
            s.nll, s.std_err, s.tokens, s.samples, s.perplexity
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn convert(input: &std::path::Path, output: &std::path::Path, to: DType) -> blockdiff::Result<ExitCode> {
    let t = Instant::now();
    let r = blockdiff::model::convert::convert_dir(input, output, to)?;
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&input.join("model.safetensors"));
    println!(
        "{} -> {} ({to}): {} tensors, {} matrices converted{}, {:.2} MB{} in {:.1} s",
        input.display(),
        output.display(),
        r.tensors,
        r.converted,
        if r.kept_f16 > 0 {
            format!(", {} kept as f16 (width not a multiple of 32)", r.kept_f16)
        } else {
            String::new()
        },
        r.bytes_out as f64 / 1e6,
        if before > 0 { format!(" (was {:.2} MB)", before as f64 / 1e6) } else { String::new() },
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn probe(args: ModelArgs, prompt: &str, masks: usize, k: usize, json: bool) -> blockdiff::Result<ExitCode> {
    let mut session = load_session(&args)?;
    let rows = pollster::block_on(session.probe(prompt, masks, k))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>4}  {:>7}  top-{k}", "dist", "entropy");
    for r in &rows {
        let cells: Vec<String> = r.texts.iter().zip(&r.probs).map(|(t, p)| format!("{:?} {:.3}", t, p)).collect();
        println!("{:>4}  {:>7.3}  {}", r.distance, r.entropy, cells.join("  "));
    }
    Ok(ExitCode::SUCCESS)
}

fn chat(
    args: ModelArgs,
    sampling: SamplingArgs,
    system: Option<String>,
    max_tokens: usize,
) -> blockdiff::Result<ExitCode> {
    use blockdiff::chat::ChatMessage;
    use std::io::BufRead;
    let mut session = load_session(&args)?;
    let opts = GenerateOptions { max_tokens, ..sampling.options() };
    eprintln!("chat with {} on {} (/reset, /exit)", args.model.display(), session.gpu().adapter);
    let start = || system.iter().map(|s| ChatMessage::new("system", s)).collect::<Vec<_>>();
    let mut messages = start();
    let mut turn = 0;
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| blockdiff::Error::Input(e.to_string()))? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = start();
                session.reset();
                turn = 0;
                eprintln!("(conversation reset)");
                continue;
            }
            "" => continue,
            _ => {}
        }
        messages.push(ChatMessage::new("user", line));
        turn += 1;
        let mut on_event = |e: Event| {
            if let Event::Block { text, .. } = e {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
            true
        };
        let g = pollster::block_on(session.chat(&messages, &opts, &mut on_event))?;
        println!();
        let s = &g.stats;
        eprintln!(
            "[turn {turn}: {} tokens, {:.2} tokens/s, NFE {}; prompt {} tokens: {} reused from the cache, {} prefilled]",
            s.generated_tokens, s.tokens_per_second, s.nfe, s.prompt_tokens, s.reused_tokens, s.prefill_tokens
        );
        messages.push(ChatMessage::new("assistant", &g.text));
    }
    Ok(ExitCode::SUCCESS)
}
