// Q4_1 block decoder for the matvec kernels. A block is 5 words: f16 d and f16 m, then 16
// bytes whose low nibbles are weights 0..15 and high nibbles weights 16..31; w = d * q + m,
// so the block's dot product is d * sum(q * x) + m * sum(x).
const WORDS: u32 = 5u;

// `xb` holds the block's 32 inputs.
fn block_dot(row: u32, b: u32, xb: array<vec4<f32>, 8>) -> f32 {
    let dm = unpack2x16float(load_w(row, b, 0u));
    var acc_q = 0.0;
    var acc_x = 0.0;
    for (var j = 0u; j < 4u; j++) {
        let q = load_w(row, b, 1u + j);
        // Four nibbles at once as unsigned bytes: unpack4xU8 is one instruction where four
        // shift-mask-convert sequences were twelve.
        let lo = vec4<f32>(unpack4xU8(q & 0x0f0f0f0fu));
        let hi = vec4<f32>(unpack4xU8((q >> 4u) & 0x0f0f0f0fu));
        let xl = xb[j];
        let xh = xb[4u + j];
        acc_q += dot(lo, xl) + dot(hi, xh);
        acc_x += dot(xl + xh, vec4<f32>(1.0));
    }
    return dm.x * acc_q + dm.y * acc_x;
}
