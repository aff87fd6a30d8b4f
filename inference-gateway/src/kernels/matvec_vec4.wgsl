// y[t, row] (+)= sum_k w[row, k] * x[t, k] for a block-quantised w (the block decoder,
// q4_1.wgsl or q8_0.wgsl, is concatenated in front). Eight outputs per invocation, rows
// gid.x + r * stride, sharing each block's inputs once loaded; no shared memory: on CPU
// adapters (lavapipe) a workgroup runs on one thread, and barriers only cost time there.

struct Params { m: u32, n: u32, k: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Word j of block b of `row`, in the interleaved layout (QMatrix::gpu_words, Vec4):
// neighbouring rows' words are neighbours.
fn load_w(row: u32, b: u32, j: u32) -> u32 {
    return w[(b * WORDS + j) * p.n + row];
}

const ROWS: u32 = 8u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.y;
    let stride = (p.n + ROWS - 1u) / ROWS;
    if (gid.x >= stride) {
        return;
    }
    var acc: array<f32, 8>;
    for (var b = 0u; b < p.k / 32u; b++) {
        var xb: array<vec4<f32>, 8>;
        let xo = t * (p.k / 4u) + b * 8u;
        for (var j = 0u; j < 8u; j++) {
            xb[j] = x[xo + j];
        }
        for (var r = 0u; r < ROWS; r++) {
            // Rows past the end repeat the last one; their sums are never written.
            let row = min(gid.x + r * stride, p.n - 1u);
            acc[r] += block_dot(row, b, xb);
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = gid.x + r * stride;
        if (row < p.n) {
            let i = t * p.n + row;
            if (p.accumulate != 0u) {
                y[i] = y[i] + acc[r];
            } else {
                y[i] = acc[r];
            }
        }
    }
}
