// out[t, :] = table[ids[t] - row0, :] for the ids that fall in this row-chunk of the table.
// Defines: the weights snippet (alias WT and the reader w_at; see weights_*.wgsl)

struct Params {
    n: u32,          // tokens
    d: u32,          // embedding width
    row0: u32,       // first vocabulary row held by this chunk
    rows: u32,       // rows in this chunk
    ids_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read> wq: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n * p.d) {
        return;
    }
    let t = idx / p.d;
    let c = idx % p.d;
    let id = ids[p.ids_offset + t];
    if (id >= p.row0 && id - p.row0 < p.rows) {
        out[p.out_offset + t * p.d + c] = w_at((id - p.row0) * p.d + c);
    }
}
