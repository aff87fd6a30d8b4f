//! Multi-head self-attention with masked softmax over padded sequences.

use super::{Kernels, Pass, div_ceil};

/// The shader keeps one head's 32 values in eight vec4 registers, so this is fixed.
pub const HEAD_DIM: usize = 32;

/// `qkv` is [batch * seq_len, 3 * heads * HEAD_DIM] with rows [q | k | v]; `lens[b]` is the
/// number of real (unpadded) tokens of sequence b. Output is [batch * seq_len, heads * HEAD_DIM].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionDims {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length of every sequence, in tokens.
    pub seq_len: usize,
    /// Attention heads, each of [`HEAD_DIM`] values.
    pub heads: usize,
}

/// CPU reference: plain two-pass softmax(q·kᵀ / sqrt(d)) · v over each sequence's real keys.
/// Padded query rows come out as zeros.
pub fn attention_cpu(qkv: &[f32], lens: &[u32], d: AttentionDims) -> Vec<f32> {
    let hidden = d.heads * HEAD_DIM;
    assert_eq!(qkv.len(), d.batch * d.seq_len * 3 * hidden, "qkv shape");
    assert_eq!(lens.len(), d.batch, "lens shape");
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    let row = |b: usize, i: usize| &qkv[(b * d.seq_len + i) * 3 * hidden..][..3 * hidden];
    let mut out = vec![0.0f32; d.batch * d.seq_len * hidden];
    let mut scores = vec![0.0f32; d.seq_len];
    for (b, &len) in lens.iter().enumerate() {
        let len = (len as usize).min(d.seq_len);
        for h in 0..d.heads {
            let off = h * HEAD_DIM;
            for i in 0..len {
                let q = &row(b, i)[off..][..HEAD_DIM];
                for (j, s) in scores[..len].iter_mut().enumerate() {
                    let k = &row(b, j)[hidden + off..][..HEAD_DIM];
                    *s = q.iter().zip(k).map(|(a, c)| a * c).sum::<f32>() * scale;
                }
                let max = scores[..len].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut total = 0.0;
                for s in &mut scores[..len] {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let o = &mut out[(b * d.seq_len + i) * hidden + off..][..HEAD_DIM];
                for (j, s) in scores[..len].iter().enumerate() {
                    let v = &row(b, j)[2 * hidden + off..][..HEAD_DIM];
                    for (oc, vc) in o.iter_mut().zip(v) {
                        *oc += s / total * vc;
                    }
                }
            }
        }
    }
    out
}

impl Kernels {
    /// Records attention over `qkv` into `out`; `lens` is a u32 buffer of `batch` lengths.
    pub fn attention(&self, pass: &mut Pass<'_>, [qkv, lens, out]: [&wgpu::Buffer; 3], d: AttentionDims) {
        assert!(d.batch > 0 && d.seq_len > 0 && d.heads > 0, "attention dims {d:?}");
        let scale = 1.0 / (HEAD_DIM as f32).sqrt();
        let params = [d.batch as u32, d.seq_len as u32, d.heads as u32, scale.to_bits()];
        let invocations = d.batch * d.heads * d.seq_len;
        pass.dispatch(&self.attention, &params, &[qkv, lens, out], [div_ceil(invocations, 64), 1, 1]);
    }
}
