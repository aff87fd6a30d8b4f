// out[r] = the index of the largest of row r of x ([rows, len]), the lowest index on ties:
// greedy decoding reads back 4 bytes per sequence instead of the logits. One workgroup of
// 256 per row strides over it, then reduces in shared memory.

struct Params { len: u32, _a: u32, _b: u32, _c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let base = wg.x * p.len;
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = li; i < p.len; i += 256u) {
        if (x[base + i] > bv || bi == 0xffffffffu) {
            bv = x[base + i];
            bi = i;
        }
    }
    best_v[li] = bv;
    best_i[li] = bi;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            let ov = best_v[li + s];
            let oi = best_i[li + s];
            if (oi != 0xffffffffu && (best_i[li] == 0xffffffffu || ov > best_v[li] || (ov == best_v[li] && oi < best_i[li]))) {
                best_v[li] = ov;
                best_i[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        out[wg.x] = best_i[0];
    }
}
