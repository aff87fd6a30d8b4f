// out[row] = LayerNorm(x[row] + residual[row]) * gamma + beta: the residual add is fused in so
// the sum never goes through memory. The normalisation itself is layer_norm_row.wgsl, a
// workgroup per row, appended to this source (workgroup_sum.wgsl first).

struct Params {
    dim: u32,
    eps: f32,
    _a: u32,
    _b: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    layer_norm_row(wid.x, lid);
}

fn row_input(row: u32, i: u32) -> vec4<f32> {
    let at = row * (p.dim / 4u) + i;
    return x[at] + residual[at];
}
