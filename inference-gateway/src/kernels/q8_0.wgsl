// Q8_0 block decoder for the matvec kernels. A block is 9 words as uploaded: the scale d as
// an f32, then 32 int8s; w = d * q.
const WORDS: u32 = 9u;

// `xb` holds the block's 32 inputs.
fn block_dot(row: u32, b: u32, xb: array<vec4<f32>, 8>) -> f32 {
    let d = bitcast<f32>(load_w(row, b, 0u));
    var acc = 0.0;
    for (var j = 0u; j < 8u; j++) {
        let q = bitcast<i32>(load_w(row, b, 1u + j));
        let v = vec4<f32>(unpack4xI8(bitcast<u32>(q)));
        acc += dot(v, xb[j]);
    }
    return d * acc;
}
