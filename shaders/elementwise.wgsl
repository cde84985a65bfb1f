// Element-wise ops over a [rows, cols] window of strided buffers.
// Defines: const OP: u32
//   0  y = gelu_tanh(a)
//   1  y = y + gate[col] * a        (gated residual)
//   2  y = y + a                    (residual)
//   3  y = silu(a) * b              (SwiGLU)

struct Params {
    rows: u32,
    cols: u32,
    a_stride: u32,
    a_offset: u32,
    b_stride: u32,
    b_offset: u32,
    y_stride: u32,
    y_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn gelu_tanh(v: f32) -> f32 {
    let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    return 0.5 * v * (1.0 + tanh(clamp(u, -15.0, 15.0)));
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * p.cols) {
        return;
    }
    let r = idx / p.cols;
    let c = idx % p.cols;
    let av = a[p.a_offset + r * p.a_stride + c];
    let yi = p.y_offset + r * p.y_stride + c;
    if (OP == 0u) {
        y[yi] = gelu_tanh(av);
    } else if (OP == 1u) {
        y[yi] = y[yi] + gate[c] * av;
    } else if (OP == 2u) {
        y[yi] = y[yi] + av;
    } else {
        let bv = b[p.b_offset + r * p.b_stride + c];
        y[yi] = av / (1.0 + exp(-av)) * bv;
    }
}
