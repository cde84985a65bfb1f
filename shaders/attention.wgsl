// Block-masked multi-head attention with a streaming (online) softmax.
//
// One workgroup handles QT queries of one head and walks the keys in chunks of KC, so every key
// and value is read from memory once per query tile (once per block when QT >= block length).
// Keys and values are addressed through a ring: key j lives in slot (kv_start + j) % kv_cap, which
// serves both a contiguous qkv buffer (start 0, cap >= n_kv) and the KV cache window.
//
// Mask modes (query index qa = q_base + i and key index j in one sequence):
//   0  block-causal: key block <= query block. With the cache in front of the current block this
//      is exactly "all cached keys + bidirectional inside the block".
//   1  training mask over x_t (0..n) concatenated with x_0 (n..2n): x_t block b sees x_t block b
//      and x_0 blocks < b; x_0 block b sees x_0 blocks <= b.
// With rope = 1, q and k are rotated on the fly at positions idx (mode 0) or idx mod n (mode 1):
// BD3-LM keeps pre-RoPE keys in its cache and rotates them at window positions.
//
// Defines: const HEAD_DIM: u32, const QT: u32, const KC: u32

struct Params {
    n_q: u32,
    n_kv: u32,
    heads: u32,
    kv_heads: u32,
    q_stride: u32,
    q_offset: u32,
    k_stride: u32,
    k_offset: u32,
    v_stride: u32,
    v_offset: u32,
    o_stride: u32,
    o_offset: u32,
    kv_start: u32,
    kv_cap: u32,
    q_base: u32,
    mode: u32,
    block: u32,
    half_n: u32,
    rope: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
const D: u32 = HEAD_DIM;
const ACC_N: u32 = (QT * D + WG - 1u) / WG;
const NEG: f32 = -3.0e38;

var<workgroup> qs: array<f32, QT * D>;
var<workgroup> ks: array<f32, KC * D>;
var<workgroup> vs: array<f32, KC * D>;
var<workgroup> ps: array<f32, QT * KC>;
var<workgroup> m_run: array<f32, QT>;
var<workgroup> l_run: array<f32, QT>;
var<workgroup> corr: array<f32, QT>;

fn position(idx: u32) -> u32 {
    if (p.mode == 1u) {
        return idx % p.half_n;
    }
    return idx;
}

fn allowed(qa: u32, j: u32) -> bool {
    if (p.mode == 0u) {
        return j / p.block <= qa / p.block;
    }
    let n = p.half_n;
    let qb = (qa % n) / p.block;
    let kb = (j % n) / p.block;
    if (qa >= n) {
        return j >= n && kb <= qb;
    }
    if (j >= n) {
        return kb < qb;
    }
    return kb == qb;
}

fn load_q(base: u32, d: u32, pos: u32) -> f32 {
    let a = q[base + d];
    if (p.rope == 0u) {
        return a;
    }
    let half = D / 2u;
    let cs = table[pos * half + d % half];
    if (d < half) {
        return a * cs.x - q[base + d + half] * cs.y;
    }
    return a * cs.x + q[base + d - half] * cs.y;
}

fn load_k(base: u32, d: u32, pos: u32) -> f32 {
    let a = k[base + d];
    if (p.rope == 0u) {
        return a;
    }
    let half = D / 2u;
    let cs = table[pos * half + d % half];
    if (d < half) {
        return a * cs.x - k[base + d + half] * cs.y;
    }
    return a * cs.x + k[base + d - half] * cs.y;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wg.y;
    let q0 = wg.x * QT;
    let kvh = h / (p.heads / p.kv_heads);

    for (var e = t; e < QT * D; e += WG) {
        let qg = q0 + e / D;
        var val = 0.0;
        if (qg < p.n_q) {
            val = load_q(p.q_offset + qg * p.q_stride + h * D, e % D, position(p.q_base + qg)) * p.scale;
        }
        qs[e] = val;
    }
    if (t < QT) {
        m_run[t] = NEG;
        l_run[t] = 0.0;
    }
    // Block-causal queries never look past their own block: stop the key walk there.
    var kv_end = p.n_kv;
    if (p.mode == 0u) {
        let q_last = p.q_base + min(q0 + QT, p.n_q) - 1u;
        kv_end = min(p.n_kv, (q_last / p.block + 1u) * p.block);
    }
    var acc: array<f32, ACC_N>;
    workgroupBarrier();

    for (var k0 = 0u; k0 < kv_end; k0 += KC) {
        for (var e = t; e < KC * D; e += WG) {
            let j = k0 + e / D;
            let d = e % D;
            var kv = 0.0;
            var vv = 0.0;
            if (j < kv_end) {
                let slot = (p.kv_start + j) % p.kv_cap;
                kv = load_k(p.k_offset + slot * p.k_stride + kvh * D, d, position(j));
                vv = v[p.v_offset + slot * p.v_stride + kvh * D + d];
            }
            ks[e] = kv;
            vs[e] = vv;
        }
        workgroupBarrier();
        for (var e = t; e < QT * KC; e += WG) {
            let qi = e / KC;
            let kj = e % KC;
            let j = k0 + kj;
            let qg = q0 + qi;
            var s = NEG;
            if (j < kv_end && qg < p.n_q && allowed(p.q_base + qg, j)) {
                var acc_s = 0.0;
                for (var d = 0u; d < D; d++) {
                    acc_s += qs[qi * D + d] * ks[kj * D + d];
                }
                s = acc_s;
            }
            ps[e] = s;
        }
        workgroupBarrier();
        if (t < QT) {
            var mx = m_run[t];
            for (var kj = 0u; kj < KC; kj++) {
                mx = max(mx, ps[t * KC + kj]);
            }
            let c = exp(m_run[t] - mx);
            var sum = 0.0;
            for (var kj = 0u; kj < KC; kj++) {
                let s = ps[t * KC + kj];
                var pr = 0.0;
                if (s > -1.0e38) {
                    pr = exp(s - mx);
                }
                ps[t * KC + kj] = pr;
                sum += pr;
            }
            l_run[t] = l_run[t] * c + sum;
            m_run[t] = mx;
            corr[t] = c;
        }
        workgroupBarrier();
        for (var r = 0u; r < ACC_N; r++) {
            let e = t + r * WG;
            if (e < QT * D) {
                let qi = e / D;
                let d = e % D;
                var a = acc[r] * corr[qi];
                for (var kj = 0u; kj < KC; kj++) {
                    a += ps[qi * KC + kj] * vs[kj * D + d];
                }
                acc[r] = a;
            }
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < ACC_N; r++) {
        let e = t + r * WG;
        if (e < QT * D) {
            let qi = e / D;
            let qg = q0 + qi;
            if (qg < p.n_q) {
                let l = l_run[qi];
                var o = 0.0;
                if (l > 0.0) {
                    o = acc[r] / l;
                }
                out[p.o_offset + qg * p.o_stride + h * D + e % D] = o;
            }
        }
    }
}
