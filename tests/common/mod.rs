//! Shared helpers for the GPU tests.
#![allow(dead_code)]

use blockdiff::gpu::{Gpu, GpuOptions};
use std::sync::{Arc, OnceLock};

/// The test GPU. In CI a missing adapter fails loudly; elsewhere the test is skipped with a reason.
pub fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    let g = GPU.get_or_init(|| Gpu::new_blocking(GpuOptions::default()).map_err(|e| e.to_string()));
    match g {
        Ok(g) => Some(g.clone()),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI needs a GPU adapter (lavapipe): {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Deterministic pseudo-random f32s in [-scale, scale).
pub fn rand_vec(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn read(gpu: &Gpu, buf: &blockdiff::gpu::GpuBuffer, len: usize) -> Vec<f32> {
    gpu.read_f32_blocking(buf, 0, len).expect("read back")
}

/// A safetensors file (F32 tensors) from `(name, shape, data)` triples.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        assert_eq!(shape.iter().product::<usize>().max(1), data.len(), "{name}");
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + data.len() * 4]}),
        );
        offset += data.len() * 4;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for (_, _, data) in tensors {
        out.extend_from_slice(bytemuck::cast_slice(data));
    }
    out
}

/// A BD3-LM checkpoint with the released tensor names and random weights.
pub fn random_bd3lm(
    layers: usize,
    d: usize,
    heads: usize,
    vocab: usize,
    context: usize,
    block: usize,
) -> (serde_json::Value, Vec<u8>) {
    let cond = 128;
    let mut seed = 100;
    let mut t = |name: &str, shape: Vec<usize>, scale: f32| {
        seed += 1;
        (name.to_string(), shape.clone(), rand_vec(shape.iter().product(), seed, scale))
    };
    let mut tensors = vec![
        t("backbone.vocab_embed.embedding", vec![vocab, d], 1.0),
        t("backbone.sigma_map.mlp.0.weight", vec![cond, 256], 0.05),
        t("backbone.sigma_map.mlp.0.bias", vec![cond], 0.05),
        t("backbone.sigma_map.mlp.2.weight", vec![cond, cond], 0.05),
        t("backbone.sigma_map.mlp.2.bias", vec![cond], 0.05),
        t("backbone.output_layer.norm_final.weight", vec![d], 1.0),
        t("backbone.output_layer.linear.weight", vec![vocab, d], 0.05),
        t("backbone.output_layer.linear.bias", vec![vocab], 0.05),
        t("backbone.output_layer.adaLN_modulation.weight", vec![2 * d, cond], 0.05),
        t("backbone.output_layer.adaLN_modulation.bias", vec![2 * d], 0.05),
    ];
    for i in 0..layers {
        let b = format!("backbone.blocks.{i}.");
        tensors.extend([
            t(&format!("{b}norm1.weight"), vec![d], 1.0),
            t(&format!("{b}attn_qkv.weight"), vec![3 * d, d], 0.03),
            t(&format!("{b}attn_out.weight"), vec![d, d], 0.03),
            t(&format!("{b}norm2.weight"), vec![d], 1.0),
            t(&format!("{b}mlp.0.weight"), vec![4 * d, d], 0.03),
            t(&format!("{b}mlp.0.bias"), vec![4 * d], 0.03),
            t(&format!("{b}mlp.2.weight"), vec![d, 4 * d], 0.03),
            t(&format!("{b}mlp.2.bias"), vec![d], 0.03),
            t(&format!("{b}adaLN_modulation.weight"), vec![6 * d, cond], 0.05),
            t(&format!("{b}adaLN_modulation.bias"), vec![6 * d], 0.05),
        ]);
    }
    let config = serde_json::json!({
        "model_type": "bd3lm", "architectures": ["BD3LM"], "hidden_dim": d, "n_heads": heads,
        "n_blocks": layers, "cond_dim": cond, "vocab_size": vocab, "model_length": context,
        "block_size": block, "adaln": true, "time_conditioning": false
    });
    (config, safetensors_bytes(&tensors))
}
