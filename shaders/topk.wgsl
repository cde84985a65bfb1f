// Per-row top-k of softmax(logits) with [MASK] excluded, plus the row's entropy: the probe that
// shows how predictions fade with distance from the prompt. k passes of a constrained argmax
// (strictly below the previous pick in (value, -index) order) avoid sorting the vocabulary.
//
// Output per row (2k + 2 words): k x (token bits, probability), entropy, log-partition.

struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const NEG: f32 = -3.0e38;

var<workgroup> red_f: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;

fn sum_f(v: f32, t: u32) -> f32 {
    red_f[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red_f[t] += red_f[t + s];
        }
        workgroupBarrier();
    }
    let r = red_f[0];
    workgroupBarrier();
    return r;
}

fn argmax(v: f32, i: u32, t: u32) -> u32 {
    red_f[t] = v;
    red_u[t] = i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            let o = red_f[t + s];
            let oi = red_u[t + s];
            if (o > red_f[t] || (o == red_f[t] && oi < red_u[t])) {
                red_f[t] = o;
                red_u[t] = oi;
            }
        }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}

fn l_of(base: u32, v: u32) -> f32 {
    if (v == p.mask_id) {
        return NEG;
    }
    return logits[base + v];
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.stride;
    let ob = row * (2u * p.k + 2u);

    var prev = 3.0e38;
    var prev_i = 0u;
    var lmax = 0.0;
    var zsum = 1.0;
    for (var r = 0u; r < p.k; r++) {
        var best = NEG;
        var best_i = 0xffffffffu;
        for (var v = t; v < p.vocab; v += WG) {
            let l = l_of(base, v);
            let below = l < prev || (l == prev && v > prev_i);
            if (below && (l > best || best_i == 0xffffffffu)) {
                best = l;
                best_i = v;
            }
        }
        let pick = argmax(best, best_i, t);
        let lp = l_of(base, pick);
        if (r == 0u) {
            lmax = lp;
            var s0 = 0.0;
            for (var v = t; v < p.vocab; v += WG) {
                let z = l_of(base, v) - lmax;
                if (z > -1.0e30) {
                    s0 += exp(z);
                }
            }
            zsum = sum_f(s0, t);
        }
        if (t == 0u) {
            out[ob + 2u * r] = bitcast<f32>(pick);
            out[ob + 2u * r + 1u] = exp(lp - lmax) / zsum;
        }
        prev = lp;
        prev_i = pick;
    }
    var s1 = 0.0;
    for (var v = t; v < p.vocab; v += WG) {
        let z = l_of(base, v) - lmax;
        if (z > -1.0e30) {
            s1 += exp(z) * z;
        }
    }
    let zs1 = sum_f(s1, t);
    if (t == 0u) {
        out[ob + 2u * p.k] = max(log(zsum) - zs1 / zsum, 0.0);
        out[ob + 2u * p.k + 1u] = lmax + log(zsum);
    }
}
