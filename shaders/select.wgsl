// Decides which still-masked positions of the current block to commit this step, and writes
// their sampled tokens into the block (which is the next step's input). One workgroup, one
// invocation per position (a block holds at most MAX_BLOCK = 256): each position works out its
// own rank among the masked ones, so no invocation runs a serial sort.
//
// Strategies:
//   0 first-hitting   one uniformly chosen masked position per step
//   1 ddpm            each masked position revealed with probability (t - s) / t, t = k/T, s = (k-1)/T
//                     with k steps left (log-linear schedule; the sampler's per-position `draw` is
//                     the uniform); the last step reveals all
//   2 confidence      highest p_token first: k_fixed per step, or ceil(masked / steps left), or with
//                     threshold > 0 every position with p_token >= threshold (at least one)
//   3 entropy-bounded lowest entropy first, while the summed entropy stays <= bound (at least one)
// Ranks break ties towards the lower position.
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

var<workgroup> masked: array<u32, 256>;   // 1 if the position is masked before this step
var<workgroup> keys: array<f32, 256>;     // rank key: larger first
var<workgroup> n_masked: atomic<u32>;
var<workgroup> n_done: atomic<u32>;

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let word = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (word >> 22u) ^ word;
}

// Whether masked position j ranks before masked position i.
fn before(j: u32, i: u32) -> bool {
    return keys[j] > keys[i] || (keys[j] == keys[i] && j < i);
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) i: u32) {
    let len = min(p.len, MAX_BLOCK);
    if (i == 0u) {
        atomicStore(&n_masked, 0u);
        atomicStore(&n_done, 0u);
    }
    var m = 0u;
    var key = 0.0;
    if (i < len) {
        if (tokens[p.tok_offset + i] == p.mask_id) {
            m = 1u;
        }
        // Confidence ranks by p_token, entropy-bounded by -entropy.
        key = samples[i].p_token;
        if (p.strategy == 3u) {
            key = -samples[i].entropy;
        }
    }
    masked[i] = m;
    keys[i] = key;
    workgroupBarrier();
    if (m == 1u) {
        atomicAdd(&n_masked, 1u);
    }
    workgroupBarrier();
    let n = atomicLoad(&n_masked);

    var steps_left = 1u;
    if (p.steps > p.step) {
        steps_left = p.steps - p.step;
    }
    var take = false;
    if (m == 1u) {
        if (p.strategy == 0u) {
            // The r-th masked position, r uniform in [0, n).
            let r = pcg(pcg(p.step + pcg((p.seed_lo ^ 0x9e3779b9u) + pcg(p.seed_hi)))) % n;
            var below = 0u;
            for (var j = 0u; j < i; j++) {
                below += masked[j];
            }
            take = below == r;
        } else if (p.strategy == 1u) {
            take = steps_left == 1u || samples[i].draw < 1.0 / f32(steps_left);
        } else {
            // Rank among the masked positions, and (entropy-bounded) the entropy of those before.
            var rank = 0u;
            var ahead = 0.0;
            for (var j = 0u; j < len; j++) {
                if (masked[j] == 1u && before(j, i)) {
                    rank++;
                    ahead -= keys[j];
                }
            }
            if (p.strategy == 2u) {
                if (p.threshold > 0.0) {
                    take = rank == 0u || samples[i].p_token >= p.threshold;
                } else {
                    var quota = (n + steps_left - 1u) / steps_left;
                    if (p.k_fixed > 0u) {
                        quota = min(p.k_fixed, n);
                    }
                    take = rank < quota;
                }
            } else {
                take = rank == 0u || ahead + samples[i].entropy <= p.entropy_bound;
            }
        }
    }
    if (take) {
        tokens[p.tok_offset + i] = samples[i].token;
        atomicAdd(&n_done, 1u);
    }
    workgroupBarrier();
    if (i == 0u) {
        let done = atomicLoad(&n_done);
        state[0] = n - done;
        state[1] = done;
    }
}
