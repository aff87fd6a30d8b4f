// out[r] = x[r] * gamma / sqrt(mean(x[r]^2) + eps), one row per invocation.

struct Params { rows: u32, dim: u32, eps: f32, _a: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.rows) {
        return;
    }
    let o = r * p.dim;
    var ss = 0.0;
    for (var j = 0u; j < p.dim; j++) {
        ss += x[o + j] * x[o + j];
    }
    let inv = 1.0 / sqrt(ss / f32(p.dim) + p.eps);
    for (var j = 0u; j < p.dim; j++) {
        out[o + j] = x[o + j] * inv * gamma[j];
    }
}
