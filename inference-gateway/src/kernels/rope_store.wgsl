// RoPE in ggml's "normal" mode (adjacent pairs x[2i], x[2i+1]) on the Q and K parts of the
// fused projection, in place for Q; the rotated K and the V of each token are written into
// this layer's part of its slot of the caches at the row's position. cos/sin come from a table the
// host computed once, so the shader and the CPU reference rotate by identical values.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;
// [positions, 32] of (cos, sin).
@group(0) @binding(4) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> rows: array<Row>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pair = gid.x;
    let t = gid.y;
    let width = (p.heads + 2u * p.kv_heads) * 64u;
    if (pair >= width / 2u) {
        return;
    }
    let pos = rows[t].pos;
    let idx = 2u * pair;
    let row = t * width;
    let kvw = p.kv_heads * 64u;
    let at = rows[t].slot * p.slot_stride + p.layer_offset + pos * kvw;
    let qk = (p.heads + p.kv_heads) * 64u;
    if (idx < qk) {
        let cs = rope[pos * 32u + pair % 32u];
        let x0 = qkv[row + idx];
        let x1 = qkv[row + idx + 1u];
        let r0 = x0 * cs.x - x1 * cs.y;
        let r1 = x0 * cs.y + x1 * cs.x;
        if (idx < p.heads * 64u) {
            qkv[row + idx] = r0;
            qkv[row + idx + 1u] = r1;
        } else {
            let k = idx - p.heads * 64u;
            k_cache[at + k] = r0;
            k_cache[at + k + 1u] = r1;
        }
    } else {
        let v = idx - qk;
        v_cache[at + v] = qkv[row + idx];
        v_cache[at + v + 1u] = qkv[row + idx + 1u];
    }
}
