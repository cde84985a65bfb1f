// Copies the keys and values of `rows` tokens into KV-cache ring slots
// (dst_start + row) % cap. The cache row width is kv_heads * head_dim.

struct Params {
    rows: u32,
    width: u32,
    k_stride: u32,
    k_offset: u32,
    v_stride: u32,
    v_offset: u32,
    dst_start: u32,
    cap: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k_src: array<f32>;
@group(0) @binding(2) var<storage, read> v_src: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.rows * p.width) {
        return;
    }
    let row = idx / p.width;
    let c = idx % p.width;
    let dst = ((p.dst_start + row) % p.cap) * p.width + c;
    k_cache[dst] = k_src[p.k_offset + row * p.k_stride + c];
    v_cache[dst] = v_src[p.v_offset + row * p.v_stride + c];
}
