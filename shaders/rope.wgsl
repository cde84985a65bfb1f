// Rotary position embedding (rotate-half convention), in place:
//   x[i]        <- x[i] cos - x[i + D/2] sin
//   x[i + D/2]  <- x[i + D/2] cos + x[i] sin        for i < D/2,
// with (cos, sin) of angle pos * theta^(-2i/D) read from a table the host computed in f64, so
// accuracy does not depend on the GPU's sin/cos at large angles.

struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    stride: u32,    // elements between consecutive rows (tokens)
    offset: u32,    // element offset of head 0 of row 0
    pos0: u32,      // position of row 0
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2<f32>>;  // [pos][i] = (cos, sin)
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let half = p.head_dim / 2u;
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * p.heads * half) {
        return;
    }
    let i = idx % half;
    let h = (idx / half) % p.heads;
    let row = idx / (half * p.heads);
    let base = p.offset + row * p.stride + h * p.head_dim;
    let cs = table[(p.pos0 + row) * half + i];
    let a = x[base + i];
    let b = x[base + i + half];
    x[base + i] = a * cs.x - b * cs.y;
    x[base + i + half] = b * cs.x + a * cs.y;
}
