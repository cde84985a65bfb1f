// Weight readers for q8 matrices: `w` holds int8 codes, four per word (element e in byte e % 4);
// `wq` holds f16 scales, two per word (group g = e / 32 in half g % 2 of word g / 2).
// Weight = scale * code.

alias WT = u32;

fn q8_scale(e: u32) -> f32 {
    let g = e / 32u;
    return unpack2x16float(wq[g / 2u])[g % 2u];
}

fn w_at(e: u32) -> f32 {
    let code = extractBits(bitcast<i32>(w[e / 4u]), (e % 4u) * 8u, 8u);
    return f32(code) * q8_scale(e);
}

// e % 4 == 0: the four codes of one word.
fn w_at4(e: u32) -> vec4<f32> {
    let v = bitcast<i32>(w[e / 4u]);
    let codes = vec4<f32>(
        f32(extractBits(v, 0u, 8u)),
        f32(extractBits(v, 8u, 8u)),
        f32(extractBits(v, 16u, 8u)),
        f32(extractBits(v, 24u, 8u)),
    );
    return codes * q8_scale(e);
}
