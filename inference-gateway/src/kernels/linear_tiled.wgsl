// y[m, n] = x[m, :] . wt[:, n] + bias[n] (optionally GELU), for real GPUs: a 64x64 output tile
// per workgroup, k staged through shared memory 16 at a time so each global load feeds 64
// multiply-adds; each of the 256 invocations owns a 4x4 block in four named vec4 accumulators.
// wt is the weight stored input-major, [k, n], so both tiles load as coalesced vec4 rows.

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// xs is k-major ([TILE_K][TILE] floats) so the inner loop reads 4 neighbouring rows at once;
// ws is [TILE_K][TILE / 4] vec4s, 4 neighbouring columns each.
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let k4 = p.k / 4u;
    let nb = p.n / 4u;
    // x tile: invocation tid fetches 4 consecutive k of tile row tid / 4.
    let xr = tid / 4u;
    let xq = tid % 4u;
    // w tile: invocation tid fetches 4 consecutive columns (vec4 tid % 16) of tile k-row tid / 16.
    let wk = tid / 16u;
    let wq = tid % 16u;

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    // No early return anywhere above the barriers: every invocation must reach them.
    for (var kt = 0u; kt < p.k; kt += TILE_K) {
        let kq = kt / 4u + xq;
        var xv = vec4<f32>(0.0);
        if (row0 + xr < p.m && kq < k4) {
            xv = x[(row0 + xr) * k4 + kq];
        }
        let xb = xq * 4u * TILE + xr;
        xs[xb] = xv.x;
        xs[xb + TILE] = xv.y;
        xs[xb + 2u * TILE] = xv.z;
        xs[xb + 3u * TILE] = xv.w;
        var wv = vec4<f32>(0.0);
        if (kt + wk < p.k && col0 / 4u + wq < nb) {
            wv = wt[(kt + wk) * nb + col0 / 4u + wq];
        }
        ws[tid] = wv;
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk++) {
            let xo = kk * TILE + lid.y * 4u;
            let a = vec4<f32>(xs[xo], xs[xo + 1u], xs[xo + 2u], xs[xo + 3u]);
            let b = ws[kk * 16u + lid.x];
            a0 += a.x * b;
            a1 += a.y * b;
            a2 += a.z * b;
            a3 += a.w * b;
        }
        workgroupBarrier();
    }

    let n4 = col0 / 4u + lid.x;
    if (n4 >= nb) {
        return;
    }
    let b = bias[n4];
    let m0 = row0 + lid.y * 4u;
    if (m0 < p.m) {
        y[m0 * nb + n4] = activate(a0 + b, p.gelu);
    }
    if (m0 + 1u < p.m) {
        y[(m0 + 1u) * nb + n4] = activate(a1 + b, p.gelu);
    }
    if (m0 + 2u < p.m) {
        y[(m0 + 2u) * nb + n4] = activate(a2 + b, p.gelu);
    }
    if (m0 + 3u < p.m) {
        y[(m0 + 3u) * nb + n4] = activate(a3 + b, p.gelu);
    }
}
