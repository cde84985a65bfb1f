// Workgroup reductions through workgroup memory (tree, log2(WG) barriers): the fallback when the
// adapter has no subgroup operations. The including kernel declares WG and the arrays red_f,
// red_u of WG elements; every invocation must call these from uniform control flow.

struct Lane {
    @builtin(local_invocation_index) t: u32,
}

fn sum_f(v: f32, l: Lane) -> f32 {
    red_f[l.t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (l.t < s) {
            red_f[l.t] += red_f[l.t + s];
        }
        workgroupBarrier();
    }
    let r = red_f[0];
    workgroupBarrier();
    return r;
}

fn min_f(v: f32, l: Lane) -> f32 {
    red_f[l.t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (l.t < s) {
            red_f[l.t] = min(red_f[l.t], red_f[l.t + s]);
        }
        workgroupBarrier();
    }
    let r = red_f[0];
    workgroupBarrier();
    return r;
}

// Index of the largest value, ties towards the lower index.
fn argmax(v: f32, i: u32, l: Lane) -> u32 {
    red_f[l.t] = v;
    red_u[l.t] = i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (l.t < s) {
            let o = red_f[l.t + s];
            let oi = red_u[l.t + s];
            if (o > red_f[l.t] || (o == red_f[l.t] && oi < red_u[l.t])) {
                red_f[l.t] = o;
                red_u[l.t] = oi;
            }
        }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}
