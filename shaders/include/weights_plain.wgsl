// Weight readers for f32/f16 matrices (the host prepends `alias WT = f32;` or the f16 pair).
// `w` is the including kernel's weight binding; e indexes the elements of the chunk.

fn w_at(e: u32) -> f32 {
    return f32(w[e]);
}

fn w_at4(e: u32) -> vec4<f32> {
    return vec4<f32>(f32(w[e]), f32(w[e + 1u]), f32(w[e + 2u]), f32(w[e + 3u]));
}
