// y[r, :] = norm(x[r, :]) * weight * (1 + scale) + shift
//
// norm is LayerNorm without bias (mean-centred) or RMSNorm; the adaLN modulation (shift, scale)
// is optional. One workgroup per row; the row is read twice (mean, then variance) for accuracy.
//
// Defines: const RMS: bool, const MODULATE: bool

struct Params {
    rows: u32,
    d: u32,
    x_stride: u32,
    x_offset: u32,
    y_stride: u32,
    y_offset: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn sum_all(v: f32, t: u32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let xb = p.x_offset + row * p.x_stride;
    let n = f32(p.d);
    var mean = 0.0;
    if (!RMS) {
        var s = 0.0;
        for (var i = t; i < p.d; i += WG) {
            s += x[xb + i];
        }
        mean = sum_all(s, t) / n;
    }
    var s2 = 0.0;
    for (var i = t; i < p.d; i += WG) {
        let c = x[xb + i] - mean;
        s2 += c * c;
    }
    let inv = inverseSqrt(sum_all(s2, t) / n + p.eps);
    let yb = p.y_offset + row * p.y_stride;
    for (var i = t; i < p.d; i += WG) {
        var v = (x[xb + i] - mean) * inv * weight[i];
        if (MODULATE) {
            v = v * (1.0 + scale[i]) + shift[i];
        }
        y[yb + i] = v;
    }
}
