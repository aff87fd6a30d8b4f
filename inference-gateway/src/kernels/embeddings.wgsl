// BERT input embeddings: word[id] + position[pos] + token_type[0], then LayerNorm, one
// workgroup per token row. Rows are laid out [batch][seq_len], so a row's position is
// row % seq_len. Single-sentence inputs only ever use token type 0, so just that row is bound.
// The normalisation is layer_norm_row.wgsl, appended to this source (workgroup_sum.wgsl first).

struct Params {
    seq_len: u32,
    dim: u32,
    vocab: u32,
    max_positions: u32,
    eps: f32,
    _a: u32,
    _b: u32,
    _c: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> word: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> position: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> token_type: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    layer_norm_row(wid.x, lid);
}

fn row_input(row: u32, i: u32) -> vec4<f32> {
    let d4 = p.dim / 4u;
    // The host validates ids; the clamps only keep a bad id from reading another tensor's rows.
    let wb = min(ids[row], p.vocab - 1u) * d4;
    let pb = min(row % p.seq_len, p.max_positions - 1u) * d4;
    return word[wb + i] + position[pb + i] + token_type[i];
}
