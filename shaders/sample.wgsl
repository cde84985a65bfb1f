// Per-position sampling from logits that never leave the GPU.
//
// For each row: z = logits / temperature (logits as-is when temperature == 0, which means
// greedy), with the [MASK] logit excluded. Outputs the chosen token, its probability and the
// row's top probability and entropy (all under softmax(z), before any truncation), which the
// unmasking strategies rank positions by.
//
// Truncation without a sort: top-k and top-p keep {v : z_v >= tau}. tau is found by bisection
// on [min z, max z] (40 halvings, below f32 resolution): for top-k the largest tau whose kept
// set has >= k tokens, for top-p the largest tau whose kept mass (within the top-k set) is >= p.
// The kept set is therefore exact up to ties at the boundary, which are all kept.
//
// Reductions (sum, min, argmax over the workgroup) come from a snippet the host prepends:
// shaders/include/reduce_subgroup.wgsl where the adapter has subgroups, else
// reduce_workgroup.wgsl.
//
// Sampling is Gumbel-max with a counter-based hash of (seed, step, position, token), so a seed
// gives the same tokens on every backend and on the CPU twin.

struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,     // 0xffffffff: none
    temperature: f32,
    top_p: f32,       // 1: off
    top_k: u32,       // 0: off
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    pos_base: u32,
    _pad: u32,
}

struct Sample {
    token: u32,
    p_token: f32,
    p_max: f32,
    entropy: f32,
    draw: f32,      // a uniform in (0, 1) for the unmasking rule (DDPM reveals)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<Sample>;

const WG: u32 = 256u;
const NEG: f32 = -3.0e38;

var<workgroup> red_f: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn unit(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) / 16777216.0;
}

fn z_of(base: u32, v: u32, inv_t: f32) -> f32 {
    if (v == p.mask_id) {
        return NEG;
    }
    return logits[base + v] * inv_t;
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let t = lane.t;
    let row = wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.stride;
    let greedy = p.temperature <= 0.0;
    var inv_t = 1.0;
    if (!greedy) {
        inv_t = 1.0 / p.temperature;
    }

    // Pass 1: max (argmax) and min of z.
    var best = NEG;
    var best_i = 0xffffffffu;
    var lo_local = 3.0e38;
    for (var v = t; v < p.vocab; v += WG) {
        let z = z_of(base, v, inv_t);
        if (z > best) {
            best = z;
            best_i = v;
        }
        if (v != p.mask_id) {
            lo_local = min(lo_local, z);
        }
    }
    let top = argmax(best, best_i, lane);
    let zmax = z_of(base, top, inv_t);
    let zmin = min_f(lo_local, lane);

    // Pass 2: partition function and entropy of softmax(z).
    var s0 = 0.0;
    var s1 = 0.0;
    for (var v = t; v < p.vocab; v += WG) {
        let z = z_of(base, v, inv_t) - zmax;
        if (z > -1.0e30) {
            let e = exp(z);
            s0 += e;
            s1 += e * z;
        }
    }
    let zsum = sum_f(s0, lane);
    let zs1 = sum_f(s1, lane);
    let entropy = max(log(zsum) - zs1 / zsum, 0.0);

    // Truncation thresholds (bisection; see the header).
    var tau = zmin;
    if (!greedy && p.top_k > 0u && p.top_k < p.vocab) {
        var lo = zmin;
        var hi = zmax;
        for (var it = 0u; it < 40u; it++) {
            let mid = 0.5 * (lo + hi);
            var c = 0.0;
            for (var v = t; v < p.vocab; v += WG) {
                if (z_of(base, v, inv_t) >= mid) {
                    c += 1.0;
                }
            }
            if (sum_f(c, lane) >= f32(p.top_k)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        tau = lo;
    }
    if (!greedy && p.top_p < 1.0) {
        // Mass inside the top-k set normalises the nucleus.
        var inside = 0.0;
        for (var v = t; v < p.vocab; v += WG) {
            let z = z_of(base, v, inv_t);
            if (z >= tau) {
                inside += exp(z - zmax);
            }
        }
        let total = sum_f(inside, lane);
        var lo = tau;
        var hi = zmax;
        for (var it = 0u; it < 40u; it++) {
            let mid = 0.5 * (lo + hi);
            var m = 0.0;
            for (var v = t; v < p.vocab; v += WG) {
                let z = z_of(base, v, inv_t);
                if (z >= mid) {
                    m += exp(z - zmax);
                }
            }
            if (sum_f(m, lane) >= p.top_p * total) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        tau = lo;
    }

    let row_key = pcg((p.pos_base + row) + pcg(p.step + pcg(p.seed_lo + pcg(p.seed_hi))));
    var chosen = top;
    if (!greedy) {
        var g_best = NEG;
        var g_i = 0xffffffffu;
        for (var v = t; v < p.vocab; v += WG) {
            let z = z_of(base, v, inv_t);
            if (z >= tau && z > -1.0e30) {
                let u = unit(pcg(pcg(v) ^ row_key));
                let g = z - log(-log(u));
                if (g > g_best) {
                    g_best = g;
                    g_i = v;
                }
            }
        }
        chosen = argmax(g_best, g_i, lane);
    }
    if (t == 0u) {
        var s: Sample;
        s.token = chosen;
        s.p_token = exp(z_of(base, chosen, inv_t) - zmax) / zsum;
        s.p_max = 1.0 / zsum;
        s.entropy = entropy;
        s.draw = unit(pcg(row_key ^ 0x68bc21ebu));
        out[row] = s;
    }
}
