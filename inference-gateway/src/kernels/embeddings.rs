//! BERT input embeddings (word + position + token type 0) followed by LayerNorm.

use super::layer_norm::normalize_into;
use super::{Kernels, Pass, group_per_row};

/// Token ids are laid out [batch][seq_len]; position = index within the sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingDims {
    /// Tokens in the batch: sequences times `seq_len`.
    pub rows: usize,
    /// Padded length of each sequence, in tokens.
    pub seq_len: usize,
    /// Hidden size: values per embedding (a multiple of 4).
    pub dim: usize,
    /// Rows of the word table: token ids must be below it.
    pub vocab: usize,
    /// Rows of the position table: `seq_len` must not exceed it.
    pub max_positions: usize,
    /// The LayerNorm's epsilon.
    pub eps: f32,
}

/// The tables the embedding step reads: `word` [vocab, dim], `position` [max_positions, dim],
/// `token_type` the type-0 row [dim], and the LayerNorm's `gamma`, `beta` [dim].
pub struct EmbeddingTables<'a, T: ?Sized> {
    /// Word embeddings, `[vocab, dim]`.
    pub word: &'a T,
    /// Position embeddings, `[max_positions, dim]`.
    pub position: &'a T,
    /// The token-type-0 embedding, `[dim]`.
    pub token_type: &'a T,
    /// The LayerNorm's scale, `[dim]`.
    pub gamma: &'a T,
    /// The LayerNorm's shift, `[dim]`.
    pub beta: &'a T,
}

/// CPU reference. Ids must be < vocab (the tokenizer guarantees it; the embedder checks).
pub fn embeddings_cpu(ids: &[u32], t: &EmbeddingTables<'_, [f32]>, d: EmbeddingDims) -> Vec<f32> {
    assert_eq!(ids.len(), d.rows, "ids shape");
    let mut out = vec![0.0f32; d.rows * d.dim];
    let mut sum = vec![0.0f32; d.dim];
    for (row, (&id, or)) in ids.iter().zip(out.chunks_exact_mut(d.dim)).enumerate() {
        let id = id as usize;
        let pos = row % d.seq_len;
        assert!(id < d.vocab && pos < d.max_positions, "id {id} / position {pos} out of range");
        let w = &t.word[id * d.dim..][..d.dim];
        let p = &t.position[pos * d.dim..][..d.dim];
        for (i, s) in sum.iter_mut().enumerate() {
            *s = w[i] + p[i] + t.token_type[i];
        }
        normalize_into(&sum, t.gamma, t.beta, d.eps, or);
    }
    out
}

impl Kernels {
    /// Records the embedding lookup + LayerNorm for `ids` (a u32 buffer) into `out`.
    pub fn embeddings(
        &self,
        pass: &mut Pass<'_>,
        ids: &wgpu::Buffer,
        t: &EmbeddingTables<'_, wgpu::Buffer>,
        out: &wgpu::Buffer,
        d: EmbeddingDims,
    ) {
        assert!(
            d.rows > 0 && d.seq_len > 0 && d.dim.is_multiple_of(4) && d.vocab > 0 && d.max_positions > 0,
            "embedding dims {d:?}"
        );
        let params = [
            d.seq_len as u32,
            d.dim as u32,
            d.vocab as u32,
            d.max_positions as u32,
            d.eps.to_bits(),
            0,
            0,
            0,
        ];
        pass.dispatch(
            &self.embeddings,
            &params,
            &[ids, t.word, t.position, t.token_type, t.gamma, t.beta, out],
            [group_per_row(d.rows), 1, 1],
        );
    }
}
