// Decides which still-masked positions of the current block to commit this step, and writes
// their sampled tokens into the block (which is the next step's input). One invocation: a block
// holds at most MAX_BLOCK positions, so a serial pass is cheaper than any parallel sort.
//
// Strategies:
//   0 first-hitting   one uniformly chosen masked position per step
//   1 ddpm            each masked position revealed with probability (t - s) / t, t = k/T, s = (k-1)/T
//                     with k steps left (log-linear schedule); the last step reveals all
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> samples: array<Sample>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;

const MAX_BLOCK: u32 = 256u;

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let word = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (word >> 22u) ^ word;
}

fn unit(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) / 16777216.0;
}

// Sort key: larger first. Confidence ranks by p_token, entropy-bounded by -entropy.
fn rank_key(i: u32) -> f32 {
    if (p.strategy == 3u) {
        return -samples[i].entropy;
    }
    return samples[i].p_token;
}

@compute @workgroup_size(1, 1, 1)
fn main() {
    var masked: array<u32, MAX_BLOCK>;
    var n = 0u;
    for (var i = 0u; i < min(p.len, MAX_BLOCK); i++) {
        if (tokens[p.tok_offset + i] == p.mask_id) {
            masked[n] = i;
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
    var commit_n = 0u;

    if (p.strategy == 0u) {
        let pick = masked[pcg(key) % n];
        tokens[p.tok_offset + pick] = samples[pick].token;
        commit_n = 1u;
    } else if (p.strategy == 1u) {
        let reveal = 1.0 / f32(steps_left);
        for (var j = 0u; j < n; j++) {
            let i = masked[j];
            if (steps_left == 1u || unit(pcg(pcg(i) ^ key)) < reveal) {
                tokens[p.tok_offset + i] = samples[i].token;
                commit_n++;
            }
        }
    } else {
        // Selection sort of the masked positions by rank key (stable: ties keep position order).
        for (var a = 0u; a < n; a++) {
            var best = a;
            for (var b = a + 1u; b < n; b++) {
                if (rank_key(masked[b]) > rank_key(masked[best])) {
                    best = b;
                }
            }
            let tmp = masked[a];
            masked[a] = masked[best];
            masked[best] = tmp;
        }
        var take = 1u;
        if (p.strategy == 2u) {
            if (p.threshold > 0.0) {
                while (take < n && samples[masked[take]].p_token >= p.threshold) {
                    take++;
                }
            } else if (p.k_fixed > 0u) {
                take = min(p.k_fixed, n);
            } else {
                take = (n + steps_left - 1u) / steps_left;
            }
        } else {
            var total = samples[masked[0]].entropy;
            while (take < n && total + samples[masked[take]].entropy <= p.entropy_bound) {
                total += samples[masked[take]].entropy;
                take++;
            }
        }
        for (var j = 0u; j < take; j++) {
            let i = masked[j];
            tokens[p.tok_offset + i] = samples[i].token;
        }
        commit_n = take;
    }
    state[0] = n - commit_n;
    state[1] = commit_n;
}
