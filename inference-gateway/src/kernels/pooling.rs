//! Masked mean pooling over each sequence's tokens, then L2 normalisation.

use super::{Kernels, Pass, group_per_row};

/// `x` is [batch * seq_len, dim]; output is [batch, dim].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDims {
    /// Sequences in the batch: rows of the output.
    pub batch: usize,
    /// Padded length of each sequence, in tokens.
    pub seq_len: usize,
    /// Values per token and per output vector.
    pub dim: usize,
}

/// CPU reference. A sequence's mean covers its first `lens[b]` rows only.
pub fn pool_normalize_cpu(x: &[f32], lens: &[u32], d: PoolDims) -> Vec<f32> {
    assert_eq!(x.len(), d.batch * d.seq_len * d.dim, "x shape");
    assert_eq!(lens.len(), d.batch, "lens shape");
    let mut out = vec![0.0f32; d.batch * d.dim];
    for (b, (&len, o)) in lens.iter().zip(out.chunks_exact_mut(d.dim)).enumerate() {
        let len = (len as usize).clamp(1, d.seq_len);
        for row in x[b * d.seq_len * d.dim..].chunks_exact(d.dim).take(len) {
            for (oc, xc) in o.iter_mut().zip(row) {
                *oc += xc;
            }
        }
        let inv_len = 1.0 / len as f32;
        o.iter_mut().for_each(|v| *v *= inv_len);
        // sentence-transformers' Normalize: divide by max(norm, 1e-12).
        let norm = o.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        o.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

impl Kernels {
    /// Records pooling of `x` into `out` ([batch, dim]); `lens` is a u32 buffer.
    pub fn pool_normalize(&self, pass: &mut Pass<'_>, [x, lens, out]: [&wgpu::Buffer; 3], d: PoolDims) {
        assert!(d.batch > 0 && d.seq_len > 0 && d.dim.is_multiple_of(4), "pool dims {d:?}");
        let params = [d.seq_len as u32, d.dim as u32, 0, 0];
        pass.dispatch(&self.pooling, &params, &[x, lens, out], [group_per_row(d.batch), 1, 1]);
    }
}
