// BERT input embeddings: word[id] + position[pos] + token_type[0], then LayerNorm, one
// invocation per token row. Rows are laid out [batch][seq_len], so a row's position is
// row % seq_len. Single-sentence inputs only ever use token type 0, so just that row is bound.
// The normalisation is layer_norm_row.wgsl, appended to this source.

struct Params {
    rows: u32,
    seq_len: u32,
    dim: u32,
    vocab: u32,
    max_positions: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> word: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> position: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> token_type: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if (row >= p.rows) {
        return;
    }
    layer_norm_row(row);
}

fn row_input(row: u32, i: u32) -> vec4<f32> {
    let d4 = p.dim / 4u;
    // The host validates ids; the clamps only keep a bad id from reading another tensor's rows.
    let wb = min(ids[row], p.vocab - 1u) * d4;
    let pb = min(row % p.seq_len, p.max_positions - 1u) * d4;
    return word[wb + i] + position[pb + i] + token_type[i];
}
