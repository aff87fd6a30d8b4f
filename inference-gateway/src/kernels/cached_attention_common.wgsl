// What both cached-attention kernels share (kv_cache_params.wgsl before it, the kernel after):
// their bindings, and one cached position's step of the online softmax, so that the GPU's
// flash-decoding and the CPU adapters' thread per row compute it alike.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> rows: array<Row>;

// Adds the position whose V starts at v_cache[base] with score s to a running softmax: the
// largest score so far, the sum of weights and the weighted sum of V, both rescaled whenever s
// beats the largest, so no score buffer is needed.
fn add_position(
    mx: ptr<function, f32>,
    total: ptr<function, f32>,
    acc: ptr<function, array<vec4<f32>, 16>>,
    s: f32,
    base: u32,
) {
    let new_mx = max(*mx, s);
    let corr = exp(*mx - new_mx);
    let wgt = exp(s - new_mx);
    *total = *total * corr + wgt;
    for (var j = 0u; j < 16u; j++) {
        (*acc)[j] = (*acc)[j] * corr + wgt * v_cache[base + j];
    }
    *mx = new_mx;
}
