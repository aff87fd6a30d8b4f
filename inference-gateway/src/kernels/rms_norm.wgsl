// out[r] = x[r] * gamma / sqrt(mean(x[r]^2) + eps). A workgroup per row: a decode step
// normalises one row per sequence, so a thread per row left all but a handful of the GPU's
// threads idle while each looped over the row twice. The sum is workgroup_sum.wgsl,
// prepended to this source.

struct Params { dim: u32, eps: f32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let d4 = p.dim / 4u;
    let o = wid.x * d4;
    var ss = 0.0;
    for (var i = lid; i < d4; i += WORKGROUP) {
        ss += dot(x[o + i], x[o + i]);
    }
    let inv = 1.0 / sqrt(workgroup_sum(lid, ss) / f32(p.dim) + p.eps);
    for (var i = lid; i < d4; i += WORKGROUP) {
        out[o + i] = x[o + i] * inv * gamma[i];
    }
}
