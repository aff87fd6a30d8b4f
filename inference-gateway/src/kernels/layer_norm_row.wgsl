// LayerNorm of one row into out[row] by the calling workgroup, shared by the shaders that fuse
// a sum into it: the including shader defines `row_input(row, i)`, the row's i-th vec4 before
// normalising (the sum is recomputed on each pass instead of going through memory), and
// module-scope `p.dim`, `p.eps`, `gamma`, `beta` and `out`; workgroup_sum.wgsl is prepended.
// A workgroup per row because a row is a few hundred values and a batch only tens of rows: a
// thread per row left most of a GPU idle. The variance is computed from the mean in a second
// pass, not as E[x^2] - E[x]^2, which cancels badly in f32.
fn layer_norm_row(row: u32, lid: u32) {
    let d4 = p.dim / 4u;
    let base = row * d4;
    var s = vec4<f32>(0.0);
    for (var i = lid; i < d4; i += WORKGROUP) {
        s += row_input(row, i);
    }
    let mean = workgroup_sum(lid, s.x + s.y + s.z + s.w) / f32(p.dim);
    var v = vec4<f32>(0.0);
    for (var i = lid; i < d4; i += WORKGROUP) {
        let d = row_input(row, i) - mean;
        v += d * d;
    }
    let inv = inverseSqrt(workgroup_sum(lid, v.x + v.y + v.z + v.w) / f32(p.dim) + p.eps);
    for (var i = lid; i < d4; i += WORKGROUP) {
        let d = row_input(row, i) - mean;
        out[base + i] = d * inv * gamma[i] + beta[i];
    }
}
