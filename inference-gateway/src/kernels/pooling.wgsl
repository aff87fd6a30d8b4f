// Sentence embedding: mean of each sequence's token rows (padding rows excluded), then L2
// normalised as sentence-transformers' Normalize does (divide by max(norm, 1e-12)).
// One invocation per sequence: batches are small and the work is a few thousand adds.

struct Params {
    batch: u32,
    seq_len: u32,
    dim: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= p.batch) {
        return;
    }
    let d4 = p.dim / 4u;
    let len = max(min(lens[b], p.seq_len), 1u);
    let inv_len = 1.0 / f32(len);
    var sq = 0.0;
    for (var c = 0u; c < d4; c++) {
        var s = vec4<f32>(0.0);
        for (var i = 0u; i < len; i++) {
            s += x[(b * p.seq_len + i) * d4 + c];
        }
        s *= inv_len;
        out[b * d4 + c] = s;
        sq += dot(s, s);
    }
    let inv_norm = 1.0 / max(sqrt(sq), 1e-12);
    for (var c = 0u; c < d4; c++) {
        out[b * d4 + c] *= inv_norm;
    }
}
