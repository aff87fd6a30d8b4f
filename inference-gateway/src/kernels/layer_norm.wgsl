// out[row] = LayerNorm(x[row] + residual[row]) * gamma + beta: the residual add is fused in so
// the sum never goes through memory. One invocation per row; rows are short (384) and few.
// The normalisation itself is layer_norm_row.wgsl, appended to this source.

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
    layer_norm_row(row);
}

fn row_input(row: u32, i: u32) -> vec4<f32> {
    let at = row * (p.dim / 4u) + i;
    return x[at] + residual[at];
}
