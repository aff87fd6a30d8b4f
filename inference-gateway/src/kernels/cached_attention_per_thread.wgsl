// Causal grouped-query attention of new rows over the KV cache, each over its own slot up to
// its own position: one invocation per (query head, row), a single pass with an online softmax
// so no score buffer is needed. Query head h reads KV head h / (heads / kv_heads).
//
// The variant for CPU adapters (lavapipe), which run a workgroup on one CPU thread with its
// invocations in SIMD lanes: splitting a row's positions across the lanes, as
// cached_attention_flash.wgsl does for GPUs, gains no parallelism there and its merge costs
// barriers and copies; it made a 40-token prefill's attention 4 to 6 times slower.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    let t = gid.y;
    if (h >= p.heads) {
        return;
    }
    let width4 = (p.heads + 2u * p.kv_heads) * 16u;
    let kvw4 = p.kv_heads * 16u;
    let kv4 = (h / (p.heads / p.kv_heads)) * 16u;
    var q: array<vec4<f32>, 16>;
    var acc: array<vec4<f32>, 16>;
    for (var j = 0u; j < 16u; j++) {
        q[j] = qkv[t * width4 + h * 16u + j] * 0.125; // 1 / sqrt(64)
        acc[j] = vec4<f32>(0.0);
    }
    var mx = -3.4e38;
    var total = 0.0;
    let len = rows[t].pos + 1u;
    let first = (rows[t].slot * p.slot_stride + p.layer_offset) / 4u;
    for (var pos = 0u; pos < len; pos++) {
        let base = first + pos * kvw4 + kv4;
        var s = 0.0;
        for (var j = 0u; j < 16u; j++) {
            s += dot(q[j], k_cache[base + j]);
        }
        add_position(&mx, &total, &acc, s, base);
    }
    for (var j = 0u; j < 16u; j++) {
        out[t * p.heads * 16u + h * 16u + j] = acc[j] / total;
    }
}
