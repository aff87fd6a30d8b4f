// out[t, j] = silu(gate[t, j]) * up[t, j], reading the fused [m, 2 * ffn] projection
// (gate rows first).

struct Params { m: u32, ffn: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate_up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.m * p.ffn) {
        return;
    }
    let t = i / p.ffn;
    let j = i % p.ffn;
    let g = gate_up[t * 2u * p.ffn + j];
    let u = gate_up[t * 2u * p.ffn + p.ffn + j];
    out[i] = g / (1.0 + exp(-g)) * u;
}
