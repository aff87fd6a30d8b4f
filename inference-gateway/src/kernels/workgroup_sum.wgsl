// The sum of one value from each invocation of a workgroup, for the kernels that give a whole
// row to one workgroup (the norms, pooling): each invocation sums its strided share of the row
// and the shares are added in a shared-memory tree. Shared memory only, no subgroup operations:
// wgpu's SUBGROUP feature is optional, and a kernel that used them would need a second form
// for the adapters without it.
// Every invocation must call it, and from uniform control flow (it has barriers).

const WORKGROUP: u32 = 64u;

var<workgroup> shares: array<f32, WORKGROUP>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    shares[lid] = v;
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        workgroupBarrier();
        if (lid < half) {
            shares[lid] += shares[lid + half];
        }
    }
    workgroupBarrier();
    let total = shares[0];
    // A second call must not overwrite shares[0] before every invocation has read it.
    workgroupBarrier();
    return total;
}
