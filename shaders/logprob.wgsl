// Cross-entropy per row: out[r] = logsumexp(logits[r, v != MASK]) - logits[r, target[r]].
// The likelihood bound needs only these numbers, never the logits, on the host.

struct Params {
    rows: u32,
    vocab: u32,
    stride: u32,
    mask_id: u32,
    target_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

fn reduce(v: f32, t: u32, is_max: bool) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            if (is_max) {
                red[t] = max(red[t], red[t + s]);
            } else {
                red[t] += red[t + s];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.stride;
    var m = -3.0e38;
    for (var v = t; v < p.vocab; v += WG) {
        if (v != p.mask_id) {
            m = max(m, logits[base + v]);
        }
    }
    let mx = reduce(m, t, true);
    var s = 0.0;
    for (var v = t; v < p.vocab; v += WG) {
        if (v != p.mask_id) {
            s += exp(logits[base + v] - mx);
        }
    }
    let total = reduce(s, t, false);
    if (t == 0u) {
        let tgt = targets[p.target_offset + row];
        out[p.out_offset + row] = mx + log(total) - logits[base + tgt];
    }
}
