// Workgroup reductions with subgroup operations: each subgroup reduces in registers, one value
// per subgroup goes through workgroup memory, and every invocation folds those (two barriers
// instead of log2(WG) + 1). The including kernel declares WG and red_f, red_u of WG elements;
// every invocation must call these from uniform control flow. Native only: naga takes the
// subgroup builtins under the device's SUBGROUP feature and rejects `enable subgroups;`, which
// browsers require.

struct Lane {
    @builtin(local_invocation_index) t: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) n_sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
}

fn sum_f(v: f32, l: Lane) -> f32 {
    let s = subgroupAdd(v);
    if (l.lane == 0u) {
        red_f[l.sg] = s;
    }
    workgroupBarrier();
    var r = 0.0;
    for (var g = 0u; g < l.n_sg; g++) {
        r += red_f[g];
    }
    workgroupBarrier();
    return r;
}

fn min_f(v: f32, l: Lane) -> f32 {
    let s = subgroupMin(v);
    if (l.lane == 0u) {
        red_f[l.sg] = s;
    }
    workgroupBarrier();
    var r = red_f[0];
    for (var g = 1u; g < l.n_sg; g++) {
        r = min(r, red_f[g]);
    }
    workgroupBarrier();
    return r;
}

// Index of the largest value, ties towards the lower index.
fn argmax(v: f32, i: u32, l: Lane) -> u32 {
    let m = subgroupMax(v);
    let at = subgroupMin(select(0xffffffffu, i, v == m));
    if (l.lane == 0u) {
        red_f[l.sg] = m;
        red_u[l.sg] = at;
    }
    workgroupBarrier();
    var best = red_f[0];
    var best_i = red_u[0];
    for (var g = 1u; g < l.n_sg; g++) {
        let o = red_f[g];
        let oi = red_u[g];
        if (o > best || (o == best && oi < best_i)) {
            best = o;
            best_i = oi;
        }
    }
    workgroupBarrier();
    return best_i;
}
