// Multi-head self-attention with a key mask, specialised to head dim 32 (MiniLM: 12 x 32).
// One invocation per (sequence, head, query): it streams over the keys once with an online
// softmax (running max and sum, rescaling the accumulator), so no score array is needed and
// the 32-wide output stays in eight named vec4s. Keys at or past the sequence's length are
// padding and never enter the softmax; padded query rows are written as zeros.
//
// qkv rows are [q | k | v], each `heads * 32` wide (the fused QKV projection's output).

struct Params {
    batch: u32,
    seq_len: u32,
    heads: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= p.batch * p.heads * p.seq_len) {
        return;
    }
    let i = idx % p.seq_len;
    let h = (idx / p.seq_len) % p.heads;
    let b = idx / (p.seq_len * p.heads);
    let hidden4 = p.heads * 8u;
    let stride4 = 3u * hidden4;
    let ob = (b * p.seq_len + i) * hidden4 + h * 8u;
    let len = min(lens[b], p.seq_len);
    if (i >= len) {
        for (var c = 0u; c < 8u; c++) {
            out[ob + c] = vec4<f32>(0.0);
        }
        return;
    }
    let qb = (b * p.seq_len + i) * stride4 + h * 8u;
    let q0 = qkv[qb] * p.scale;
    let q1 = qkv[qb + 1u] * p.scale;
    let q2 = qkv[qb + 2u] * p.scale;
    let q3 = qkv[qb + 3u] * p.scale;
    let q4 = qkv[qb + 4u] * p.scale;
    let q5 = qkv[qb + 5u] * p.scale;
    let q6 = qkv[qb + 6u] * p.scale;
    let q7 = qkv[qb + 7u] * p.scale;

    var mx = -3.0e38;
    var sum = 0.0;
    var o0 = vec4<f32>(0.0);
    var o1 = vec4<f32>(0.0);
    var o2 = vec4<f32>(0.0);
    var o3 = vec4<f32>(0.0);
    var o4 = vec4<f32>(0.0);
    var o5 = vec4<f32>(0.0);
    var o6 = vec4<f32>(0.0);
    var o7 = vec4<f32>(0.0);
    for (var j = 0u; j < len; j++) {
        let kb = (b * p.seq_len + j) * stride4 + hidden4 + h * 8u;
        let s = dot(q0, qkv[kb]) + dot(q1, qkv[kb + 1u]) + dot(q2, qkv[kb + 2u]) + dot(q3, qkv[kb + 3u])
              + dot(q4, qkv[kb + 4u]) + dot(q5, qkv[kb + 5u]) + dot(q6, qkv[kb + 6u]) + dot(q7, qkv[kb + 7u]);
        let m_new = max(mx, s);
        let corr = exp(mx - m_new);
        let e = exp(s - m_new);
        sum = sum * corr + e;
        let vb = kb + hidden4;
        o0 = o0 * corr + e * qkv[vb];
        o1 = o1 * corr + e * qkv[vb + 1u];
        o2 = o2 * corr + e * qkv[vb + 2u];
        o3 = o3 * corr + e * qkv[vb + 3u];
        o4 = o4 * corr + e * qkv[vb + 4u];
        o5 = o5 * corr + e * qkv[vb + 5u];
        o6 = o6 * corr + e * qkv[vb + 6u];
        o7 = o7 * corr + e * qkv[vb + 7u];
        mx = m_new;
    }
    let inv = 1.0 / sum;
    out[ob] = o0 * inv;
    out[ob + 1u] = o1 * inv;
    out[ob + 2u] = o2 * inv;
    out[ob + 3u] = o3 * inv;
    out[ob + 4u] = o4 * inv;
    out[ob + 5u] = o5 * inv;
    out[ob + 6u] = o6 * inv;
    out[ob + 7u] = o7 * inv;
}
