// out[t, j] = row ids[t] of a Q8_0 table (blocks of 9 words, see q8_0.wgsl), dequantised:
// the token embedding lookup.

// `interleaved`: the Vec4 layout of QMatrix::gpu_words (word j of block b of every row side
// by side); otherwise blocks row by row.
struct Params { m: u32, dim: u32, interleaved: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.m * p.dim) {
        return;
    }
    let t = i / p.dim;
    let j = i % p.dim;
    let row = ids[t];
    let b = j / 32u;
    let wj = 1u + (j % 32u) / 4u;
    var d_at = (row * (p.dim / 32u) + b) * 9u;
    var q_at = d_at + wj;
    if (p.interleaved != 0u) {
        d_at = b * 9u * p.rows + row;
        q_at = (b * 9u + wj) * p.rows + row;
    }
    let d = bitcast<f32>(table[d_at]);
    let word = bitcast<i32>(table[q_at]);
    out[i] = d * f32(extractBits(word, (j % 4u) * 8u, 8u));
}
