//! The counter-based RNG shared by the sampling shaders and their CPU twins: a PCG hash of
//! (seed, step, position, token). Stateless, so GPU and CPU draw identical numbers.

pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28).wrapping_add(4))) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// A uniform number in (0, 1) from 24 hash bits.
pub fn unit(x: u32) -> f32 {
    ((x >> 8) as f32 + 0.5) / 16777216.0
}

/// Splits a 64-bit seed into the two words the shaders take.
pub fn split_seed(seed: u64) -> (u32, u32) {
    (seed as u32, (seed >> 32) as u32)
}

/// Key of one sampled row: everything but the token.
pub fn row_key(seed: u64, step: u32, pos: u32) -> u32 {
    let (lo, hi) = split_seed(seed);
    pcg(pos.wrapping_add(pcg(step.wrapping_add(pcg(lo.wrapping_add(pcg(hi)))))))
}

/// Key of one unmasking decision (which positions to reveal at a step).
pub fn select_key(seed: u64, step: u32) -> u32 {
    let (lo, hi) = split_seed(seed);
    pcg(step.wrapping_add(pcg((lo ^ 0x9e37_79b9).wrapping_add(pcg(hi)))))
}
