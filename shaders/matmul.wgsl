// Y[m, n0 + j] (op)= act(X[m, :] . W[j, :] + bias[n0 + j])   for one row-chunk of W.
//
// W is PyTorch's Linear layout [out, in] (row j is output column n0 + j). Large weights are
// split into row chunks that each fit one storage binding; n0 places a chunk in the output.
// Each thread owns a 4x4 register tile; a workgroup covers 4*WG_Y rows x 64 columns.
//
// Defines (prepended by the host):
//   weights snippet     alias WT and the readers w_at/w_at4 (f32, f16, q8 or q4; see weights_*.wgsl)
//   const TILED: bool   stage X and W tiles through workgroup memory (real GPUs; needs WG_Y = 8);
//                       otherwise read straight from storage (fastest on CPU adapters, where
//                       barriers are dear)
//   const WG_Y: u32     thread rows: 8 for big M; 4, 2, 1 for the few rows of a block step, so
//                       no thread computes rows that do not exist
//   const HAS_BIAS: bool
//   const ACT: u32      0 none, 1 GELU (tanh approximation), 2 SiLU
//   const EPI: u32      0 store, 1 y += gate[col] * v (gated residual), 2 y += v

struct Params {
    m: u32,
    n: u32,         // columns in this chunk (rows of the W chunk)
    k: u32,
    n0: u32,        // first output column of this chunk
    x_stride: u32,
    x_offset: u32,
    y_stride: u32,
    y_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read> wq: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> gate: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const BM: u32 = 4u * WG_Y;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> xs: array<f32, 512>;   // 32 * BK, [row][k]
var<workgroup> ws: array<f32, 1024>;  // BN * BK, [col][k]

fn gelu_tanh(v: f32) -> f32 {
    let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    return 0.5 * v * (1.0 + tanh(clamp(u, -15.0, 15.0)));
}

// W[row, kk..kk + 4], zero past the end of the row.
fn w_row4(row: u32, kk: u32) -> vec4<f32> {
    let e = row * p.k + kk;
    if (kk + 4u <= p.k) {
        return w_at4(e);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        if (kk + i < p.k) {
            v[i] = w_at(e + i);
        }
    }
    return v;
}

fn store(row: u32, col: u32, acc: f32) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    let gc = p.n0 + col;
    var v = acc;
    if (HAS_BIAS) {
        v += bias[gc];
    }
    if (ACT == 1u) {
        v = gelu_tanh(v);
    } else if (ACT == 2u) {
        v = v / (1.0 + exp(-v));
    }
    let idx = p.y_offset + row * p.y_stride + gc;
    if (EPI == 0u) {
        y[idx] = v;
    } else if (EPI == 1u) {
        y[idx] = y[idx] + gate[gc] * v;
    } else {
        y[idx] = y[idx] + v;
    }
}

@compute @workgroup_size(16, WG_Y, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r0 = wg.y * BM + lid.y * 4u;
    let c0 = wg.x * BN + lid.x * 4u;
    var acc: array<array<f32, 4>, 4>;

    if (TILED) {
        for (var k0 = 0u; k0 < p.k; k0 += BK) {
            for (var r = 0u; r < 4u; r++) {
                let e = li + r * 128u;
                let row = wg.y * BM + e / BK;
                let kk = k0 + e % BK;
                var v = 0.0;
                if (row < p.m && kk < p.k) {
                    v = x[p.x_offset + row * p.x_stride + kk];
                }
                xs[e] = v;
            }
            // 64 columns x 16 k = 256 runs of four weights, two per thread.
            for (var r = 0u; r < 2u; r++) {
                let e = li + r * 128u;
                let col = wg.x * BN + e / 4u;
                var v = vec4<f32>(0.0);
                if (col < p.n) {
                    v = w_row4(col, k0 + (e % 4u) * 4u);
                }
                for (var i = 0u; i < 4u; i++) {
                    ws[e * 4u + i] = v[i];
                }
            }
            workgroupBarrier();
            for (var kk = 0u; kk < BK; kk++) {
                var a: array<f32, 4>;
                var b: array<f32, 4>;
                for (var i = 0u; i < 4u; i++) {
                    a[i] = xs[(lid.y * 4u + i) * BK + kk];
                    b[i] = ws[(lid.x * 4u + i) * BK + kk];
                }
                for (var i = 0u; i < 4u; i++) {
                    for (var j = 0u; j < 4u; j++) {
                        acc[i][j] += a[i] * b[j];
                    }
                }
            }
            workgroupBarrier();
        }
    } else {
        // Clamp addresses instead of branching: out-of-range rows/columns are never stored.
        var xr: array<u32, 4>;
        var wr: array<u32, 4>;
        for (var i = 0u; i < 4u; i++) {
            xr[i] = p.x_offset + min(r0 + i, p.m - 1u) * p.x_stride;
            wr[i] = min(c0 + i, p.n - 1u) * p.k;
        }
        let k4 = p.k & ~3u;
        var kk = 0u;
        for (; kk < k4; kk += 4u) {
            var a: array<vec4<f32>, 4>;
            var b: array<vec4<f32>, 4>;
            for (var i = 0u; i < 4u; i++) {
                let xa = xr[i] + kk;
                a[i] = vec4<f32>(x[xa], x[xa + 1u], x[xa + 2u], x[xa + 3u]);
                b[i] = w_at4(wr[i] + kk);
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] += dot(a[i], b[j]);
                }
            }
        }
        for (; kk < p.k; kk++) {
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] += x[xr[i] + kk] * w_at(wr[j] + kk);
                }
            }
        }
    }

    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(r0 + i, c0 + j, acc[i][j]);
        }
    }
}
