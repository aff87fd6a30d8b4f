// Causal grouped-query attention of new rows over the KV cache, each over its own slot up to
// its own position. Query head h reads KV head h / (heads / kv_heads).
//
// Flash-decoding: a workgroup per (query head, row), its threads splitting the row's positions.
// A decode step has one row per sequence, so a thread per (head, row) was SmolLM2's whole step
// (9 threads) each looping over every cached position. Each thread keeps an online-softmax
// partial of its positions (running max, sum of weights, weighted sum of V), and the partials
// are merged pairwise in a shared-memory tree, each merge rescaling both sides to the larger
// max. The split stops at the workgroup: splitting positions across workgroups as well would
// need a second dispatch to merge, and a workgroup of 64 already covers a context of thousands
// in a few dozen positions per thread. A prefill is the same dispatch with more rows.
// For GPUs: CPU adapters get cached_attention_per_thread.wgsl (which says why).

const WORKGROUP: u32 = 64u;
// At each merge step the upper half of the merging threads hands over its partials: at most
// 32 threads x 16 vec4s (8 KiB, inside WebGPU's 16 KiB of workgroup memory).
const HANDED: u32 = WORKGROUP / 2u;

// The row's query head, read by every thread: shared rather than a private copy each, which
// would double the registers a thread needs.
var<workgroup> q: array<vec4<f32>, 16>;
var<workgroup> handed_acc: array<vec4<f32>, HANDED * 16u>;
var<workgroup> handed_max: array<f32, HANDED>;
var<workgroup> handed_sum: array<f32, HANDED>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    let width4 = (p.heads + 2u * p.kv_heads) * 16u;
    let kvw4 = p.kv_heads * 16u;
    let kv4 = (h / (p.heads / p.kv_heads)) * 16u;
    if (lid < 16u) {
        q[lid] = qkv[t * width4 + h * 16u + lid] * 0.125; // 1 / sqrt(64)
    }
    workgroupBarrier();
    var acc = array<vec4<f32>, 16>();
    // Finite, so a thread with no positions merges as weight exp(-3.4e38 - max) = 0, not NaN.
    var mx = -3.4e38;
    var total = 0.0;
    let len = rows[t].pos + 1u;
    let first = (rows[t].slot * p.slot_stride + p.layer_offset) / 4u;
    for (var pos = lid; pos < len; pos += WORKGROUP) {
        let base = first + pos * kvw4 + kv4;
        var s = 0.0;
        for (var j = 0u; j < 16u; j++) {
            s += dot(q[j], k_cache[base + j]);
        }
        add_position(&mx, &total, &acc, s, base);
    }
    // Only the first min(len, 64) threads hold positions: a tree over the smallest power of two
    // that covers them (none for a row at position 0), the same for the whole workgroup, as its
    // barriers need.
    let holders = min(len, WORKGROUP);
    let covered = 1u << (32u - countLeadingZeros(holders - 1u));
    for (var half = covered / 2u; half > 0u; half /= 2u) {
        if (lid >= half && lid < 2u * half) {
            let at = lid - half;
            handed_max[at] = mx;
            handed_sum[at] = total;
            for (var j = 0u; j < 16u; j++) {
                handed_acc[at * 16u + j] = acc[j];
            }
        }
        workgroupBarrier();
        if (lid < half) {
            let theirs_mx = handed_max[lid];
            let new_mx = max(mx, theirs_mx);
            let mine = exp(mx - new_mx);
            let theirs = exp(theirs_mx - new_mx);
            total = total * mine + handed_sum[lid] * theirs;
            for (var j = 0u; j < 16u; j++) {
                acc[j] = acc[j] * mine + handed_acc[lid * 16u + j] * theirs;
            }
            mx = new_mx;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        for (var j = 0u; j < 16u; j++) {
            out[t * p.heads * 16u + h * 16u + j] = acc[j] / total;
        }
    }
}
