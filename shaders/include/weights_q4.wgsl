// Weight readers for q4 matrices: `w` holds 4-bit codes, eight per word (element e in bits
// 4 * (e % 8)); `wq` holds (scale, min) of group e / 32 as two f16 halves of one word.
// Weight = min + scale * code.

alias WT = u32;

fn w_at(e: u32) -> f32 {
    let sm = unpack2x16float(wq[e / 32u]);
    let code = (w[e / 8u] >> ((e % 8u) * 4u)) & 15u;
    return sm.y + sm.x * f32(code);
}

// e % 4 == 0: four consecutive nibbles of one word.
fn w_at4(e: u32) -> vec4<f32> {
    let sm = unpack2x16float(wq[e / 32u]);
    let bits = w[e / 8u] >> ((e % 8u) * 4u);
    let codes = vec4<f32>(f32(bits & 15u), f32((bits >> 4u) & 15u), f32((bits >> 8u) & 15u), f32((bits >> 12u) & 15u));
    return codes * sm.x + sm.y;
}
