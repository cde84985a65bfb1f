// Decides which still-masked positions of the current block to commit this step, and writes
// their sampled tokens into the block (which is the next step's input). One invocation: a block
// holds at most MAX_BLOCK positions, so a serial pass is cheaper than any parallel sort.
//
// Strategies:
//   0 first-hitting   one uniformly chosen masked position per step
//   1 ddpm            each masked position revealed with probability (t - s) / t, t = k/T, s = (k-1)/T
//                     with k steps left (log-linear schedule; the sampler's per-position `draw` is
//                     the uniform); the last step reveals all
//   2 confidence      highest p_token first: k_fixed per step, or ceil(masked / steps left), or with
//                     threshold > 0 every position with p_token >= threshold (at least one)
//   3 entropy-bounded lowest entropy first, while the summed entropy stays <= bound (at least one)
//
// state[0] = masked positions left after this step, state[1] = positions committed this step.

struct Params {
    len: u32,
    mask_id: u32,
    strategy: u32,
    step: u32,
    steps: u32,
    seed_lo: u32,
    seed_hi: u32,
    k_fixed: u32,
    threshold: f32,
    entropy_bound: f32,
    tok_offset: u32,
    _pad: u32,
}

struct Sample {
    token: u32,
    p_token: f32,
    p_max: f32,
    entropy: f32,
    draw: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> samples: array<Sample>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;

const MAX_BLOCK: u32 = 256u;
const NONE: u32 = 0xffffffffu;

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let word = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (word >> 22u) ^ word;
}

// Sort key: larger first. Confidence ranks by p_token, entropy-bounded by -entropy.
fn rank_key(i: u32) -> f32 {
    if (p.strategy == 3u) {
        return -samples[i].entropy;
    }
    return samples[i].p_token;
}

fn is_masked(i: u32) -> bool {
    return tokens[p.tok_offset + i] == p.mask_id;
}

// The best still-masked position (ties: the lowest position), or NONE.
fn best_masked(len: u32) -> u32 {
    var best = NONE;
    for (var i = 0u; i < len; i++) {
        if (is_masked(i) && (best == NONE || rank_key(i) > rank_key(best))) {
            best = i;
        }
    }
    return best;
}

fn commit(i: u32) {
    tokens[p.tok_offset + i] = samples[i].token;
}

// Positions are committed by writing their token, so "still masked" doubles as "not yet
// chosen": repeated scans replace a sort and need no arrays.
@compute @workgroup_size(1, 1, 1)
fn main() {
    let len = min(p.len, MAX_BLOCK);
    var n = 0u;
    for (var i = 0u; i < len; i++) {
        if (is_masked(i)) {
            n++;
        }
    }
    if (n == 0u) {
        state[0] = 0u;
        state[1] = 0u;
        return;
    }
    let key = pcg(p.step + pcg((p.seed_lo ^ 0x9e3779b9u) + pcg(p.seed_hi)));
    var steps_left = 1u;
    if (p.steps > p.step) {
        steps_left = p.steps - p.step;
    }
    var done = 0u;

    if (p.strategy == 0u) {
        // The r-th masked position, r uniform in [0, n).
        var r = pcg(key) % n;
        for (var i = 0u; i < len; i++) {
            if (is_masked(i)) {
                if (r == 0u) {
                    commit(i);
                    break;
                }
                r--;
            }
        }
        done = 1u;
    } else if (p.strategy == 1u) {
        // The per-position uniform draw comes from the sampler (hashing in this loop made
        // lavapipe leak memory on every dispatch).
        let reveal = 1.0 / f32(steps_left);
        for (var i = 0u; i < len; i++) {
            if (is_masked(i) && (steps_left == 1u || samples[i].draw < reveal)) {
                commit(i);
                done++;
            }
        }
    } else if (p.strategy == 2u) {
        var take = n;
        if (p.threshold <= 0.0) {
            if (p.k_fixed > 0u) {
                take = min(p.k_fixed, n);
            } else {
                take = (n + steps_left - 1u) / steps_left;
            }
        }
        loop {
            let b = best_masked(len);
            if (b == NONE || done == take || (done > 0u && p.threshold > 0.0 && samples[b].p_token < p.threshold)) {
                break;
            }
            commit(b);
            done++;
        }
    } else {
        var total = 0.0;
        loop {
            let b = best_masked(len);
            if (b == NONE || (done > 0u && total + samples[b].entropy > p.entropy_bound)) {
                break;
            }
            total += samples[b].entropy;
            commit(b);
            done++;
        }
    }
    state[0] = n - done;
    state[1] = done;
}
