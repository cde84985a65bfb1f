//! Checkpoints with the released tensor names and random weights, for tests and benchmarks of
//! shapes the project cannot download (BD3-LM-small, medium models).

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

/// A safetensors file (F32 tensors) from `(name, shape, data)` triples.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + data.len() * 4]}),
        );
        offset += data.len() * 4;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_default();
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

/// `config.json` and `model.safetensors` of a BD3-LM with random weights.
pub fn random_bd3lm(
    layers: usize,
    d: usize,
    heads: usize,
    vocab: usize,
    context: usize,
    block: usize,
) -> (serde_json::Value, Vec<u8>) {
    let (config, tensors) = bd3lm_tensors(layers, d, heads, vocab, context, block);
    (config, safetensors_bytes(&tensors))
}

/// The config and tensors of [`random_bd3lm`], for tests that alter a checkpoint.
pub type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

pub fn bd3lm_tensors(
    layers: usize,
    d: usize,
    heads: usize,
    vocab: usize,
    context: usize,
    block: usize,
) -> (serde_json::Value, Tensors) {
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
    (config, tensors)
}

/// `config.json` and `model.safetensors` of an SDAR (Qwen3-layout) model with random weights;
/// `tied` leaves out `lm_head.weight` (the embedding serves as the output layer).
#[allow(clippy::too_many_arguments)]
pub fn random_sdar(
    layers: usize,
    d: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    inter: usize,
    vocab: usize,
    block: usize,
    tied: bool,
) -> (serde_json::Value, Vec<u8>) {
    let mut seed = 500;
    let mut t = |name: &str, shape: Vec<usize>, scale: f32| {
        seed += 1;
        (name.to_string(), shape.clone(), rand_vec(shape.iter().product(), seed, scale))
    };
    let (qw, kw) = (heads * head_dim, kv_heads * head_dim);
    let mut tensors = vec![t("model.embed_tokens.weight", vec![vocab, d], 0.05), t("model.norm.weight", vec![d], 1.0)];
    if !tied {
        tensors.push(t("lm_head.weight", vec![vocab, d], 0.05));
    }
    for i in 0..layers {
        let p = format!("model.layers.{i}.");
        tensors.extend([
            t(&format!("{p}input_layernorm.weight"), vec![d], 1.0),
            t(&format!("{p}post_attention_layernorm.weight"), vec![d], 1.0),
            t(&format!("{p}self_attn.q_proj.weight"), vec![qw, d], 0.03),
            t(&format!("{p}self_attn.k_proj.weight"), vec![kw, d], 0.03),
            t(&format!("{p}self_attn.v_proj.weight"), vec![kw, d], 0.03),
            t(&format!("{p}self_attn.o_proj.weight"), vec![d, qw], 0.03),
            t(&format!("{p}self_attn.q_norm.weight"), vec![head_dim], 1.0),
            t(&format!("{p}self_attn.k_norm.weight"), vec![head_dim], 1.0),
            t(&format!("{p}mlp.gate_proj.weight"), vec![inter, d], 0.03),
            t(&format!("{p}mlp.up_proj.weight"), vec![inter, d], 0.03),
            t(&format!("{p}mlp.down_proj.weight"), vec![d, inter], 0.03),
        ]);
    }
    let config = serde_json::json!({
        "model_type": "sdar", "architectures": ["SDARForCausalLM"], "hidden_size": d,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": tied,
        "block_size": block, "mask_token_id": vocab - 1, "max_position_embeddings": 32768
    });
    (config, safetensors_bytes(&tensors))
}
