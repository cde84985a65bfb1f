//! The `blockdiff` command line: generate, score, probe, info, verify.

use blockdiff::gpu::{DType, Gpu, GpuMatrix, GpuOptions};
use blockdiff::kernels::matmul::{self, Activation, Epilogue, Matmul};
use blockdiff::model::ModelFiles;
use clap::{Parser, Subcommand, ValueEnum};
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
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        match p {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
        }
    }
}

#[derive(Subcommand)]
enum Command {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Verify { dir, precision, no_cpu } => verify(dir, precision.into(), !no_cpu),
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
    let wq: Vec<f32> = match dtype {
        DType::F32 => w[..cols * k].to_vec(),
        DType::F16 => w[..cols * k].iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
    };
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
    println!("matmul path: {}", if gpu.prefers_tiled() { "workgroup-memory tiles" } else { "register tiles (CPU adapter)" });
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
    let golden = std::fs::read(&golden_path).map_err(|e| blockdiff::Error::File {
        path: golden_path.display().to_string(),
        message: e.to_string(),
    })?;
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
