//! Parity with the authors' implementation on the shared golden sets (every entry, GPU f32,
//! GPU f16 where available, and the CPU reference).

mod common;
use blockdiff::gpu::DType;
use blockdiff::model::ModelFiles;
use std::path::PathBuf;

fn golden_dir(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden").join(name);
    if dir.join("golden.safetensors").exists() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "golden set {} is missing in CI", dir.display());
    eprintln!("skipping: {} not found", dir.display());
    None
}

fn run(name: &str, dtype: DType, cpu: bool) {
    let Some(gpu) = common::gpu() else { return };
    let Some(dir) = golden_dir(name) else { return };
    if dtype == DType::F16 && !gpu.features.shader_f16 {
        eprintln!("skipping f16: adapter lacks SHADER_F16");
        return;
    }
    let files = ModelFiles::from_dir(&dir).unwrap();
    let golden = std::fs::read(dir.join("golden.safetensors")).unwrap();
    let report = pollster::block_on(blockdiff::verify::verify(&gpu, &files, &golden, dtype, cpu)).unwrap();
    for c in &report.checks {
        println!("{:28} {:8} max abs err {:.3e} (tol {:.1e})", c.entry, c.path, c.max_abs_err, c.tolerance);
    }
    let entries: std::collections::HashSet<_> = report.checks.iter().map(|c| c.entry.as_str()).collect();
    assert!(entries.len() >= 4, "too few golden entries checked: {entries:?}");
    assert_eq!(
        report.failed(),
        0,
        "golden mismatches: {:#?}",
        report.checks.iter().filter(|c| !c.passed()).collect::<Vec<_>>()
    );
}

#[test]
fn bd3lm_golden_gpu_f32_and_cpu() {
    run("bd3lm-tiny-random", DType::F32, true);
}

#[test]
fn bd3lm_golden_gpu_f16() {
    run("bd3lm-tiny-random", DType::F16, false);
}

#[test]
fn bd3lm_golden_with_tensors_split_across_bindings() {
    // A 1 MiB binding cap splits the 12.9 MB embedding and output layer into 13 chunks each.
    let opts =
        blockdiff::gpu::GpuOptions { storage_binding_cap: Some(1 << 20), min_storage_binding: 0, ..Default::default() };
    let Ok(gpu) = blockdiff::gpu::Gpu::new_blocking(opts) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    let Some(dir) = golden_dir("bd3lm-tiny-random") else { return };
    let files = ModelFiles::from_dir(&dir).unwrap();
    let golden = std::fs::read(dir.join("golden.safetensors")).unwrap();
    let report = pollster::block_on(blockdiff::verify::verify(&gpu, &files, &golden, DType::F32, false)).unwrap();
    assert!(report.checks.len() >= 17);
    assert_eq!(report.failed(), 0, "{:#?}", report.checks);
}

#[test]
fn sdar_golden_gpu_f32_and_cpu() {
    run("sdar-tiny-random", DType::F32, true);
}

#[test]
fn sdar_golden_gpu_f16() {
    run("sdar-tiny-random", DType::F16, false);
}
