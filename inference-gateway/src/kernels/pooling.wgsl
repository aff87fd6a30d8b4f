// Sentence embedding: mean of each sequence's token rows (padding rows excluded), then L2
// normalised as sentence-transformers' Normalize does (divide by max(norm, 1e-12)).
// A workgroup per sequence, its threads across the features: a batch is a few sequences, so a
// thread per sequence made the whole batch one workgroup of mostly idle threads, each summing
// every feature of every token alone. The norm's sum is workgroup_sum.wgsl, prepended.

struct Params {
    seq_len: u32,
    dim: u32,
    _a: u32,
    _b: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.x;
    let d4 = p.dim / 4u;
    let len = max(min(lens[b], p.seq_len), 1u);
    let inv_len = 1.0 / f32(len);
    var sq = 0.0;
    for (var c = lid; c < d4; c += WORKGROUP) {
        var s = vec4<f32>(0.0);
        for (var i = 0u; i < len; i++) {
            s += x[(b * p.seq_len + i) * d4 + c];
        }
        s *= inv_len;
        out[b * d4 + c] = s;
        sq += dot(s, s);
    }
    let inv_norm = 1.0 / max(sqrt(workgroup_sum(lid, sq)), 1e-12);
    // Each invocation rescales only the features it wrote, so no barrier is needed between.
    for (var c = lid; c < d4; c += WORKGROUP) {
        out[b * d4 + c] *= inv_norm;
    }
}
