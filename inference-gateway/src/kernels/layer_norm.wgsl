// out[row] = LayerNorm(x[row] + residual[row]) * gamma + beta: the residual add is fused in so
// the sum never goes through memory. One invocation per row; rows are short (384) and few.
// The variance is computed from the mean in a second pass, not as E[x^2] - E[x]^2, which
// cancels badly in f32.

struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if (row >= p.rows) {
        return;
    }
    let d4 = p.dim / 4u;
    let base = row * d4;
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < d4; i++) {
        s += x[base + i] + residual[base + i];
    }
    let mean = (s.x + s.y + s.z + s.w) / f32(p.dim);
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < d4; i++) {
        let d = x[base + i] + residual[base + i] - mean;
        v += d * d;
    }
    let inv = inverseSqrt((v.x + v.y + v.z + v.w) / f32(p.dim) + p.eps);
    for (var i = 0u; i < d4; i++) {
        let d = x[base + i] + residual[base + i] - mean;
        out[base + i] = d * inv * gamma[i] + beta[i];
    }
}
