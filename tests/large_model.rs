//! The BD3-LM-small shape (12 layers, hidden 768, 12 heads, vocab 50258, context 1024) with the
//! released tensor names and random weights: loads (f32, so the 154 MB embedding and output layer
//! are split across storage bindings) and runs a KV-cached block step of 16 tokens.

mod common;
use blockdiff::gpu::DType;
use blockdiff::model::{Attn, LoadOptions, Model, ModelFiles};

#[test]
fn bd3lm_small_shape_runs_a_cached_block_step() {
    let Some(gpu) = common::gpu() else { return };
    let (config, weights) = common::random_bd3lm(12, 768, 12, 50258, 1024, 16);
    let files =
        ModelFiles::from_bytes("bd3lm-small-random", &serde_json::to_vec(&config).unwrap(), weights, None).unwrap();
    let model = Model::load(&gpu, &files, &LoadOptions { dtype: Some(DType::F32), ..Default::default() }).unwrap();
    drop(files);
    let binding = gpu.max_storage_binding();
    assert!(50258 * 768 * 4 > binding, "the output layer should exceed one binding here");
    let mut cache = model.new_cache().unwrap();
    let ws = model.workspace(16).unwrap();
    let prompt: Vec<u32> = (0..16).map(|i| 1000 + i * 37).collect();
    let t0 = std::time::Instant::now();
    pollster::block_on(model.forward_logits(&ws, &prompt, Attn::Cached(&cache), 0..1, false)).unwrap();
    cache.commit(16);
    let commit_ms = t0.elapsed().as_secs_f64() * 1e3;
    let block = vec![50257u32; 16];
    let t1 = std::time::Instant::now();
    let (logits, _) =
        pollster::block_on(model.forward_logits(&ws, &block, Attn::Cached(&cache), 0..16, false)).unwrap();
    let step_ms = t1.elapsed().as_secs_f64() * 1e3;
    assert_eq!(logits.len(), 16 * 50258);
    assert!(logits.iter().all(|v| v.is_finite()));
    let spread = logits.iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!(spread > 0.0);
    println!(
        "bd3lm-small f32 on {}: weights {:.1} MiB, KV cache {:.1} MiB; commit forward {commit_ms:.0} ms, block step (16 tokens + logits) {step_ms:.0} ms",
        gpu.adapter,
        model.weight_bytes() as f64 / (1 << 20) as f64,
        cache.bytes() as f64 / (1 << 20) as f64
    );
}

#[test]
fn sdar_real_width_runs_a_block_step() {
    // SDAR-1.7B widths, 2 layers: hidden 2048, 16 heads, 8 KV heads, head_dim 128, vocab 151936,
    // tied embeddings. The 151936 x 2048 table (1.2 GB f32, 0.6 GB f16) exceeds one binding.
    let Some(gpu) = common::gpu() else { return };
    let (config, weights) = blockdiff::model::synthetic::random_sdar(2, 2048, 16, 8, 128, 6144, 151936, 4, true);
    let files =
        ModelFiles::from_bytes("sdar-1.7b-width", &serde_json::to_vec(&config).unwrap(), weights, None).unwrap();
    let dtype = if gpu.features.shader_f16 { DType::F16 } else { DType::F32 };
    let opts = LoadOptions { dtype: Some(dtype), context: Some(64) };
    let model = Model::load(&gpu, &files, &opts).unwrap();
    drop(files);
    assert!(151936 * dtype.row_bytes(2048) as u64 > gpu.max_storage_binding());
    let mut cache = model.new_cache().unwrap();
    let ws = model.workspace(8).unwrap();
    let prompt: Vec<u32> = (0..8).map(|i| 100 + i * 9973).collect();
    pollster::block_on(model.forward_logits(&ws, &prompt, Attn::Cached(&cache), 0..0, false)).unwrap();
    cache.commit(8);
    let block = vec![151935u32; 4];
    let t = std::time::Instant::now();
    let (logits, _) = pollster::block_on(model.forward_logits(&ws, &block, Attn::Cached(&cache), 0..4, false)).unwrap();
    assert_eq!(logits.len(), 4 * 151936);
    assert!(logits.iter().all(|v| v.is_finite()) && logits.iter().any(|v| *v != 0.0));
    println!(
        "sdar 2-layer real width ({dtype}) on {}: weights {:.0} MiB, block step {:.0} ms",
        gpu.adapter,
        model.weight_bytes() as f64 / 1048576.0,
        t.elapsed().as_secs_f64() * 1e3
    );
}
