// y[t, row] (+)= sum_k w[row, k] * x[t, k] for a block-quantised w (the block decoder is
// concatenated in front). Real GPUs: a workgroup of 256 computes 8 rows, 32 invocations per
// row striding over its blocks, with token t's x staged once in shared memory and the
// partial sums reduced there.

struct Params { m: u32, n: u32, k: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// k up to 2048: the widest matrix SmolLM2 has is 1536.
const MAX_K4: u32 = 512u;
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> partial: array<f32, 256>;

// Word j of block b of `row`, blocks stored row by row (QMatrix::gpu_words, Tiled).
fn load_w(row: u32, b: u32, j: u32) -> u32 {
    return w[(row * (p.k / 32u) + b) * WORDS + j];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.y;
    let k4 = p.k / 4u;
    for (var i = li; i < k4; i += 256u) {
        xs[i] = x[t * k4 + i];
    }
    workgroupBarrier();
    let lane = li % 32u;
    let row = wg.x * 8u + li / 32u;
    let blocks = p.k / 32u;
    var acc = 0.0;
    if (row < p.n) {
        for (var b = lane; b < blocks; b += 32u) {
            var xb: array<vec4<f32>, 8>;
            for (var j = 0u; j < 8u; j++) {
                xb[j] = xs[b * 8u + j];
            }
            acc += block_dot(row, b, xb);
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var s = 16u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.n) {
        let i = t * p.n + row;
        if (p.accumulate != 0u) {
            y[i] = y[i] + partial[li];
        } else {
            y[i] = partial[li];
        }
    }
}
