//! Each GPU kernel against its CPU twin on random inputs, awkward shapes included.
//! Tolerances: f32 kernels 1e-4 relative to the magnitude of the result (sums of up to a few
//! thousand products); f16 weights 2e-3 relative (f16 keeps 11 significant bits).

mod common;
use blockdiff::gpu::{DType, Gpu, GpuMatrix};
use blockdiff::kernels::elementwise::{Elementwise, Op, View};
use blockdiff::kernels::*;
use common::*;
use std::sync::Arc;

fn view(buf: &blockdiff::gpu::GpuBuffer, offset: usize, stride: usize) -> View<'_> {
    View { buf, offset, stride }
}

fn check_matmul(gpu: &Arc<Gpu>, m: usize, k: usize, n: usize, dtype: DType, act: matmul::Activation, epi: u32) {
    let x = rand_vec(m * k, 1 + (m * k) as u64, 1.0);
    let w = rand_vec(n * k, 2 + n as u64, 0.5);
    let bias = rand_vec(n, 3, 0.5);
    let gate = rand_vec(n, 4, 1.0);
    let y0 = rand_vec(m * n, 5, 1.0);
    let wq = dtype.as_computed(&w, n, k);
    let mut want = y0.clone();
    matmul::cpu(&x, k, m, &wq, n, k, Some(&bias), act, epi, Some(&gate), &mut want, n);

    let xb = gpu.upload_f32("x", &x).unwrap();
    let wm = GpuMatrix::upload(gpu, "w", n, k, &w, dtype).unwrap();
    let bb = gpu.upload_f32("bias", &bias).unwrap();
    let gb = gpu.upload_f32("gate", &gate).unwrap();
    let yb = gpu.upload_f32("y", &y0).unwrap();
    let mut rec = gpu.recorder();
    matmul::Matmul {
        x: &xb,
        x_offset: 0,
        x_stride: k,
        m,
        w: &wm,
        bias: Some(&bb),
        act,
        epi: match epi {
            0 => matmul::Epilogue::Store,
            1 => matmul::Epilogue::GatedAdd(&gb),
            _ => matmul::Epilogue::Add,
        },
        y: &yb,
        y_offset: 0,
        y_stride: n,
    }
    .encode(&mut rec)
    .unwrap();
    rec.submit().unwrap();
    let got = read(gpu, &yb, m * n);
    let scale = want.iter().fold(1.0f32, |a, v| a.max(v.abs()));
    // The twin computes with the stored values (f16-rounded or dequantized), so only the
    // summation order differs, except that f16 kernels round products differently on some GPUs.
    let tol = scale * if dtype == DType::F16 { 2e-3 } else { 1e-4 } * (k as f32 / 64.0).sqrt().max(1.0);
    let err = max_abs_diff(&got, &want);
    assert!(err <= tol, "matmul {m}x{k}x{n} {dtype:?} {act:?} epi {epi}: err {err} > tol {tol}");
}

#[test]
fn matmul_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    use matmul::Activation::*;
    for &(m, k, n) in &[(1, 1, 1), (1, 7, 5), (3, 64, 130), (16, 768, 96), (33, 45, 67), (5, 64, 50258)] {
        check_matmul(&gpu, m, k, n, DType::F32, None, 0);
    }
    check_matmul(&gpu, 7, 36, 70, DType::F32, GeluTanh, 0);
    check_matmul(&gpu, 7, 36, 70, DType::F32, Silu, 2);
    check_matmul(&gpu, 9, 40, 33, DType::F32, None, 1);
    if gpu.features.shader_f16 {
        check_matmul(&gpu, 16, 96, 130, DType::F16, GeluTanh, 0);
        check_matmul(&gpu, 3, 33, 17, DType::F16, None, 1);
    }
}

#[test]
fn quantized_matmul_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    use matmul::Activation::*;
    for dtype in [DType::Q8, DType::Q4] {
        for &(m, k, n) in &[(1, 32, 1), (1, 64, 50), (4, 96, 130), (16, 768, 96), (33, 64, 67)] {
            check_matmul(&gpu, m, k, n, dtype, None, 0);
        }
        check_matmul(&gpu, 7, 64, 70, dtype, GeluTanh, 1);
        // Width 36 is not whole groups: stored as f16/f32 instead, still correct.
        check_matmul(&gpu, 3, 36, 20, dtype, Silu, 2);
    }
}

#[test]
fn tiled_matmul_path_matches_cpu() {
    // The configuration real GPUs run, forced on the CPU adapter: workgroup-memory tiles and the
    // kernel parameters in a uniform buffer.
    let opts =
        blockdiff::gpu::GpuOptions { tiled_matmul: Some(true), params_in_storage: Some(false), ..Default::default() };
    let Ok(gpu) = Gpu::new_blocking(opts) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    assert!(gpu.prefers_tiled() && !gpu.params_in_storage());
    let mut dtypes = vec![DType::F32, DType::Q8, DType::Q4];
    if gpu.features.shader_f16 {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        for &(m, k, n) in &[(1, 64, 5), (16, 96, 130), (33, 64, 67)] {
            check_matmul(&gpu, m, k, n, dtype, matmul::Activation::GeluTanh, 1);
        }
    }
    check_matmul(&gpu, 5, 37, 9, DType::F32, matmul::Activation::None, 0);
}

#[test]
fn matmul_split_weights_match_cpu() {
    // A binding cap of 4 KiB splits a 100 x 64 f32 weight (25.6 KB) into 7 chunks.
    let opts =
        blockdiff::gpu::GpuOptions { storage_binding_cap: Some(4096), min_storage_binding: 0, ..Default::default() };
    let Ok(gpu) = Gpu::new_blocking(opts) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    let w = GpuMatrix::upload(&gpu, "w", 100, 64, &rand_vec(6400, 9, 1.0), DType::F32).unwrap();
    assert_eq!(w.chunks.len(), 7);
    check_matmul(&gpu, 4, 64, 100, DType::F32, matmul::Activation::None, 0);
}

#[test]
fn norm_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    for &(rows, d) in &[(1, 1), (3, 64), (5, 100), (2, 1000)] {
        for kind in [norm::Kind::LayerNorm, norm::Kind::RmsNorm] {
            for modulate in [false, true] {
                let x: Vec<f32> = rand_vec(rows * d, 11, 2.0).iter().map(|v| v + 0.5).collect();
                let w = rand_vec(d, 12, 1.0);
                let sh = rand_vec(d, 13, 0.5);
                let sc = rand_vec(d, 14, 0.5);
                let want = norm::cpu(kind, &x, d, &w, modulate.then_some((&sh[..], &sc[..])), 1e-5);
                let (xb, wb, shb, scb) = (
                    gpu.upload_f32("x", &x).unwrap(),
                    gpu.upload_f32("w", &w).unwrap(),
                    gpu.upload_f32("sh", &sh).unwrap(),
                    gpu.upload_f32("sc", &sc).unwrap(),
                );
                let yb = gpu.storage("y", (rows * d * 4) as u64).unwrap();
                let mut rec = gpu.recorder();
                norm::Norm {
                    kind,
                    x: &xb,
                    x_offset: 0,
                    x_stride: d,
                    rows,
                    d,
                    weight: &wb,
                    modulation: modulate.then_some((&shb, &scb)),
                    eps: 1e-5,
                    y: &yb,
                    y_offset: 0,
                    y_stride: d,
                }
                .encode(&mut rec)
                .unwrap();
                rec.submit().unwrap();
                let err = max_abs_diff(&read(&gpu, &yb, rows * d), &want);
                assert!(err < 1e-4, "norm {kind:?} {rows}x{d} modulate {modulate}: {err}");
            }
        }
    }
}

#[test]
fn rope_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let (rows, heads, hd, pos0) = (5, 3, 24, 1000);
    let table = rope::RopeTable::new(&gpu, hd, 1e6, pos0 + rows).unwrap();
    // Rotate heads inside a wider row (stride 100, offset 4), as in a fused qkv buffer.
    let stride = 100;
    let x = rand_vec(rows * stride, 21, 1.0);
    let mut want = x.clone();
    for r in 0..rows {
        rope::cpu_row(&table.host, hd, &mut want[r * stride + 4..r * stride + 4 + heads * hd], heads, pos0 + r);
    }
    let xb = gpu.upload_f32("x", &x).unwrap();
    let mut rec = gpu.recorder();
    rope::Rope { table: &table, x: &xb, rows, heads, stride, offset: 4, pos0 }.encode(&mut rec).unwrap();
    rec.submit().unwrap();
    let err = max_abs_diff(&read(&gpu, &xb, rows * stride), &want);
    assert!(err < 1e-5, "rope: {err}");
}

#[test]
fn embed_matches_cpu_with_chunked_table() {
    let opts =
        blockdiff::gpu::GpuOptions { storage_binding_cap: Some(1024), min_storage_binding: 0, ..Default::default() };
    let Ok(gpu) = Gpu::new_blocking(opts) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    let ids = vec![0u32, 36, 5, 12, 12, 30];
    let vocab = 37;
    // f32 (width 20), then quantized tables (width 64) against the dequantized twin; all split.
    for (dtype, d) in [(DType::F32, 20), (DType::Q8, 64), (DType::Q4, 64)] {
        let table = rand_vec(vocab * d, 31 + d as u64, 1.0);
        let m = GpuMatrix::upload(&gpu, "emb", vocab, d, &table, dtype).unwrap();
        assert!(m.chunks.len() > 1 && m.dtype == dtype);
        let idb = gpu.upload_u32("ids", &ids).unwrap();
        let out = gpu.storage("out", (ids.len() * d * 4) as u64).unwrap();
        let mut rec = gpu.recorder();
        embed::Embed { table: &m, ids: &idb, ids_offset: 0, n: ids.len(), out: &out, out_offset: 0 }
            .encode(&mut rec)
            .unwrap();
        rec.submit().unwrap();
        let want = embed::cpu(&dtype.as_computed(&table, vocab, d), d, &ids);
        assert_eq!(read(&gpu, &out, ids.len() * d), want, "{dtype}");
    }
}

#[test]
fn elementwise_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (7, 33);
    for op in [Op::Gelu, Op::GatedAdd, Op::Add, Op::SiluMul] {
        let a = rand_vec(rows * cols, 41, 4.0);
        let b = rand_vec(rows * cols, 42, 2.0);
        let gate = rand_vec(cols, 43, 1.0);
        let y0 = rand_vec(rows * cols, 44, 1.0);
        let mut want = y0.clone();
        elementwise::cpu(op, cols, &a, Some(&b), Some(&gate), &mut want);
        let (ab, bb, gb, yb) = (
            gpu.upload_f32("a", &a).unwrap(),
            gpu.upload_f32("b", &b).unwrap(),
            gpu.upload_f32("g", &gate).unwrap(),
            gpu.upload_f32("y", &y0).unwrap(),
        );
        let mut rec = gpu.recorder();
        Elementwise {
            op,
            rows,
            cols,
            a: view(&ab, 0, cols),
            b: Some(view(&bb, 0, cols)),
            gate: Some(&gb),
            y: view(&yb, 0, cols),
        }
        .encode(&mut rec)
        .unwrap();
        rec.submit().unwrap();
        let err = max_abs_diff(&read(&gpu, &yb, rows * cols), &want);
        assert!(err < 1e-5, "{op:?}: {err}");
    }
}

/// Runs the attention kernel over a ring-buffer cache and compares with the CPU twin.
#[allow(clippy::too_many_arguments)]
fn check_attention(
    gpu: &Arc<Gpu>,
    n_q: usize,
    n_kv: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
    q_base: usize,
    mask: attention::Mask,
    rope: bool,
    kv_start: usize,
    kv_cap: usize,
) {
    let q = rand_vec(n_q * heads * d, 51 + n_q as u64, 1.0);
    let k = rand_vec(n_kv * kv_heads * d, 52 + n_kv as u64, 1.0);
    let v = rand_vec(n_kv * kv_heads * d, 53, 1.0);
    let table = rope::RopeTable::new(gpu, d, 10000.0, n_kv + n_q + q_base).unwrap();
    let want = attention::cpu(&q, &k, &v, n_q, n_kv, heads, kv_heads, d, q_base, mask, rope.then_some(&table.host[..]));
    // Lay k/v into the ring.
    let w = kv_heads * d;
    let mut kr = vec![0.0; kv_cap * w];
    let mut vr = vec![0.0; kv_cap * w];
    kv_store::cpu(&k, w, &mut kr, kv_start, kv_cap);
    kv_store::cpu(&v, w, &mut vr, kv_start, kv_cap);
    let (qb, kb, vb) =
        (gpu.upload_f32("q", &q).unwrap(), gpu.upload_f32("k", &kr).unwrap(), gpu.upload_f32("v", &vr).unwrap());
    let ob = gpu.storage("o", (n_q * heads * d * 4) as u64).unwrap();
    let mut rec = gpu.recorder();
    attention::Attention {
        q: view(&qb, 0, heads * d),
        k: view(&kb, 0, w),
        v: view(&vb, 0, w),
        out: view(&ob, 0, heads * d),
        n_q,
        n_kv,
        heads,
        kv_heads,
        head_dim: d,
        kv_start,
        kv_cap,
        q_base,
        mask,
        rope: rope.then_some(&table),
    }
    .encode(&mut rec)
    .unwrap();
    rec.submit().unwrap();
    let err = max_abs_diff(&read(gpu, &ob, n_q * heads * d), &want);
    assert!(err < 2e-5, "attention nq {n_q} nkv {n_kv} h {heads}/{kv_heads} d {d} {mask:?} rope {rope}: {err}");
}

#[test]
fn attention_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    use attention::Mask::*;
    // Block-causal over a whole sequence (odd length, several tiles).
    check_attention(&gpu, 37, 37, 4, 4, 16, 0, BlockCausal { block: 4 }, true, 0, 37);
    // KV-cache decode: 4 queries after 12 cached keys, ring wrapped, GQA 4:2, head_dim 24.
    check_attention(&gpu, 4, 16, 4, 2, 24, 12, BlockCausal { block: 4 }, false, 10, 20);
    // One query, head_dim 128 (big head, small tiles).
    check_attention(&gpu, 1, 9, 2, 1, 128, 8, BlockCausal { block: 1 }, true, 0, 9);
    // Training mask over x_t ⊕ x_0 (n = 10, block 4: a partial last block).
    check_attention(&gpu, 20, 20, 2, 2, 8, 0, Training { block: 4, half_n: 10 }, true, 0, 20);
}

#[test]
fn kv_store_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let (rows, width, cap, start) = (4, 12, 6, 4);
    let src = rand_vec(rows * 3 * width, 61, 1.0);
    let srcb = gpu.upload_f32("qkv", &src).unwrap();
    let kc = gpu.storage("k", (cap * width * 4) as u64).unwrap();
    let vc = gpu.storage("v", (cap * width * 4) as u64).unwrap();
    let mut rec = gpu.recorder();
    kv_store::KvStore {
        k: view(&srcb, width, 3 * width),
        v: view(&srcb, 2 * width, 3 * width),
        rows,
        width,
        k_cache: &kc,
        v_cache: &vc,
        dst_start: start,
        cap,
    }
    .encode(&mut rec)
    .unwrap();
    rec.submit().unwrap();
    let ks: Vec<f32> = (0..rows).flat_map(|r| src[r * 3 * width + width..r * 3 * width + 2 * width].to_vec()).collect();
    let mut want = vec![0.0; cap * width];
    kv_store::cpu(&ks, width, &mut want, start, cap);
    assert_eq!(read(&gpu, &kc, cap * width), want);
}

fn gpu_samples(
    gpu: &Arc<Gpu>,
    logits: &[f32],
    rows: usize,
    vocab: usize,
    s: sample::SampleSettings,
) -> Vec<sample::Sample> {
    let lb = gpu.upload_f32("logits", logits).unwrap();
    let out = gpu.storage("samples", (rows * 20) as u64).unwrap();
    let mut rec = gpu.recorder();
    sample::SampleRows { logits: &lb, rows, vocab, stride: vocab, settings: s, out: &out }.encode(&mut rec).unwrap();
    rec.submit().unwrap();
    let words = read(gpu, &out, rows * 5);
    bytemuck::cast_slice::<f32, sample::Sample>(&words).to_vec()
}

fn settings(temperature: f32, top_p: f32, top_k: u32, seed: u64, step: u32) -> sample::SampleSettings {
    sample::SampleSettings { temperature, top_p, top_k, seed, step, pos_base: 0, mask_id: 3 }
}

#[test]
fn sample_matches_cpu_twin() {
    let Some(gpu) = gpu() else { return };
    eprintln!("reductions with subgroups: {}", sample::uses_subgroups(&gpu));
    check_sampler(&gpu);
    // The workgroup-memory reductions (adapters without subgroups, browsers).
    let opts = blockdiff::gpu::GpuOptions { allow_subgroups: false, ..Default::default() };
    let Ok(plain) = Gpu::new_blocking(opts) else { return };
    assert!(!sample::uses_subgroups(&plain));
    check_sampler(&plain);
}

fn check_sampler(gpu: &Arc<Gpu>) {
    let gpu = gpu.clone();
    let (rows, vocab) = (6, 50258);
    let mut logits = rand_vec(rows * vocab, 71, 6.0);
    logits[3] = 1e4; // the [MASK] logit is huge but must never be chosen
    for s in [
        settings(0.0, 1.0, 0, 1, 0),
        settings(1.0, 1.0, 0, 7, 3),
        settings(0.7, 0.9, 0, 8, 1),
        settings(1.0, 1.0, 40, 9, 2),
        settings(1.3, 0.5, 100, 10, 5),
    ] {
        let got = gpu_samples(&gpu, &logits, rows, vocab, s);
        for r in 0..rows {
            let want = sample::cpu_row(&logits[r * vocab..(r + 1) * vocab], &s, r as u32);
            assert_ne!(got[r].token, 3);
            assert_eq!(got[r].token, want.token, "row {r} {s:?}");
            assert!((got[r].p_token - want.p_token).abs() < 1e-5, "{:?} vs {want:?}", got[r]);
            assert!((got[r].entropy - want.entropy).abs() < 1e-3 * want.entropy.max(1.0));
        }
    }
}

#[test]
fn sample_distribution_passes_chi_square() {
    // 2000 draws from a 6-token distribution (one row, different steps) against the exact
    // probabilities. Critical chi-square value for 5 degrees of freedom at p = 0.001: 20.52.
    let Some(gpu) = gpu() else { return };
    let logits = [0.5f32, 1.0, -0.5, 9.0, 2.0, 0.0, 1.5];
    let vocab = logits.len();
    let rows = 250;
    let mut counts = vec![0usize; vocab];
    for round in 0..8u32 {
        let many: Vec<f32> = (0..rows).flat_map(|_| logits.iter().copied()).collect();
        let mut s = settings(1.0, 1.0, 0, 1234, round);
        s.pos_base = round * rows as u32;
        for smp in gpu_samples(&gpu, &many, rows, vocab, s) {
            counts[smp.token as usize] += 1;
        }
    }
    assert_eq!(counts[3], 0, "[MASK] sampled");
    let z: f64 = logits.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, &l)| (l as f64).exp()).sum();
    let n = 2000.0;
    let chi2: f64 = (0..vocab)
        .filter(|&i| i != 3)
        .map(|i| {
            let e = n * (logits[i] as f64).exp() / z;
            (counts[i] as f64 - e).powi(2) / e
        })
        .sum();
    assert!(chi2 < 20.52, "chi-square {chi2} with counts {counts:?}");
}

#[test]
fn sample_edge_cases() {
    let Some(gpu) = gpu() else { return };
    let vocab = 1000;
    let logits = rand_vec(4 * vocab, 81, 3.0);
    let greedy = gpu_samples(&gpu, &logits, 4, vocab, settings(0.0, 1.0, 0, 1, 0));
    // Temperature -> 0 equals argmax.
    let cold = gpu_samples(&gpu, &logits, 4, vocab, settings(1e-4, 1.0, 0, 5, 0));
    // A tiny top-p keeps only the top token; top-k 1 likewise.
    let tiny_p = gpu_samples(&gpu, &logits, 4, vocab, settings(1.0, 1e-6, 0, 6, 0));
    let k1 = gpu_samples(&gpu, &logits, 4, vocab, settings(1.0, 1.0, 1, 7, 0));
    for r in 0..4 {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let arg = (0..vocab).filter(|&v| v != 3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(greedy[r].token as usize, arg);
        assert_eq!(cold[r].token as usize, arg);
        assert_eq!(tiny_p[r].token as usize, arg);
        assert_eq!(k1[r].token as usize, arg);
        assert!((greedy[r].p_max - greedy[r].p_token).abs() < 1e-6);
    }
}

#[test]
fn select_matches_cpu_for_every_rule() {
    let Some(gpu) = gpu() else { return };
    let len = 16;
    let mask = 99u32;
    let samples: Vec<sample::Sample> = (0..len)
        .map(|i| sample::Sample {
            token: 200 + i as u32,
            p_token: ((i * 7) % 11) as f32 / 11.0,
            p_max: 0.5,
            entropy: ((i * 5) % 13) as f32 / 4.0,
            draw: ((i * 3) % 8) as f32 / 8.0 + 0.01,
        })
        .collect();
    let mut start = vec![mask; len];
    start[2] = 5; // fixed (prompt) tokens are never touched
    start[9] = 6;
    let rules = [
        select::Rule::FirstHitting,
        select::Rule::Ddpm,
        select::Rule::Confidence { k: 0, threshold: 0.0 },
        select::Rule::Confidence { k: 3, threshold: 0.0 },
        select::Rule::Confidence { k: 0, threshold: 0.6 },
        select::Rule::EntropyBounded { bound: 2.0 },
    ];
    let sb = gpu.upload("samples", bytemuck::cast_slice(&samples)).unwrap();
    for rule in rules {
        let mut cpu_tokens = start.clone();
        let tb = gpu.upload_u32("tokens", &start).unwrap();
        let state = gpu.storage("state", 8).unwrap();
        for step in 0..4u32 {
            let mut rec = gpu.recorder();
            select::Select {
                rule,
                samples: &sb,
                tokens: &tb,
                tok_offset: 0,
                len,
                mask_id: mask,
                step,
                steps: 4,
                seed: 42,
                state: &state,
            }
            .encode(&mut rec)
            .unwrap();
            rec.submit().unwrap();
            let (left, committed) = select::cpu(rule, &samples, &mut cpu_tokens, mask, step, 4, 42);
            let got = gpu.read_u32(&tb, 0, len);
            let got = pollster::block_on(got).unwrap();
            assert_eq!(got, cpu_tokens, "{rule:?} step {step}");
            let st = pollster::block_on(gpu.read_u32(&state, 0, 2)).unwrap();
            assert_eq!(st, vec![left, committed], "{rule:?} step {step}");
            assert_eq!((got[2], got[9]), (5, 6));
        }
        if matches!(rule, select::Rule::Ddpm | select::Rule::Confidence { k: 0, threshold: 0.0 }) {
            assert!(!cpu_tokens.contains(&mask), "{rule:?} must finish in `steps` steps");
        }
    }
}

#[test]
fn topk_and_cross_entropy_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let (rows, vocab, k) = (5, 50258, 6);
    let logits = rand_vec(rows * vocab, 91, 5.0);
    let lb = gpu.upload_f32("logits", &logits).unwrap();
    let out = gpu.storage("topk", (rows * (2 * k + 2) * 4) as u64).unwrap();
    let targets: Vec<u32> = vec![0, 17, 50257, 3, 40000];
    let tb = gpu.upload_u32("targets", &targets).unwrap();
    let ce = gpu.storage("ce", (rows * 4) as u64).unwrap();
    let mut rec = gpu.recorder();
    topk::TopKRows { logits: &lb, rows, vocab, stride: vocab, mask_id: 50257, k, out: &out }.encode(&mut rec).unwrap();
    logprob::CrossEntropy {
        logits: &lb,
        rows,
        vocab,
        stride: vocab,
        mask_id: 50257,
        targets: &tb,
        target_offset: 0,
        out: &ce,
        out_offset: 0,
    }
    .encode(&mut rec)
    .unwrap();
    rec.submit().unwrap();
    let got = topk::decode(&read(&gpu, &out, rows * (2 * k + 2)), rows, k);
    let ce_got = read(&gpu, &ce, rows);
    for r in 0..rows {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let want = topk::cpu_row(row, 50257, k);
        assert_eq!(got[r].tokens, want.tokens);
        assert!(max_abs_diff(&got[r].probs, &want.probs) < 1e-6);
        assert!((got[r].entropy - want.entropy).abs() < 1e-3);
        assert!((got[r].log_z - want.log_z).abs() < 1e-3);
        let want_ce = logprob::cpu_row(row, 50257, targets[r]);
        if targets[r] != 50257 {
            assert!((ce_got[r] - want_ce).abs() < 1e-3, "ce row {r}: {} vs {want_ce}", ce_got[r]);
        }
    }
}
