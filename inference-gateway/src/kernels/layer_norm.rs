//! LayerNorm over the sum of a sublayer's output and its residual input.

use super::{Kernels, Pass, group_per_row};

/// `x` and `residual` are [rows, dim]; `gamma` and `beta` are [dim].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormDims {
    /// Rows to normalise (tokens in the batch).
    pub rows: usize,
    /// Values per row (a multiple of 4 for the shader).
    pub dim: usize,
    /// Added to the variance before its square root.
    pub eps: f32,
}

/// CPU reference: LayerNorm(x + residual) * gamma + beta, row by row.
pub fn layer_norm_cpu(
    x: &[f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    d: LayerNormDims,
) -> Vec<f32> {
    assert_eq!(x.len(), d.rows * d.dim, "x shape");
    assert_eq!(residual.len(), x.len(), "residual shape");
    let mut out = vec![0.0f32; x.len()];
    let mut sum = vec![0.0f32; d.dim];
    for ((xr, rr), or) in
        x.chunks_exact(d.dim).zip(residual.chunks_exact(d.dim)).zip(out.chunks_exact_mut(d.dim))
    {
        for ((s, a), b) in sum.iter_mut().zip(xr).zip(rr) {
            *s = a + b;
        }
        normalize_into(&sum, gamma, beta, d.eps, or);
    }
    out
}

/// Writes LayerNorm(v) * gamma + beta into `out`; shared with the embeddings reference.
pub(super) fn normalize_into(v: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, a), g), b) in out.iter_mut().zip(v).zip(gamma).zip(beta) {
        *o = (a - mean) * inv * g + b;
    }
}

impl Kernels {
    /// Records out = LayerNorm(x + residual) * gamma + beta. `dim` must be a multiple of 4.
    pub fn layer_norm(
        &self,
        pass: &mut Pass<'_>,
        [x, residual, gamma, beta, out]: [&wgpu::Buffer; 5],
        d: LayerNormDims,
    ) {
        assert!(d.rows > 0 && d.dim > 0 && d.dim.is_multiple_of(4), "layer norm dims {d:?}");
        let params = [d.dim as u32, d.eps.to_bits(), 0, 0];
        pass.dispatch(
            &self.layer_norm,
            &params,
            &[x, residual, gamma, beta, out],
            [group_per_row(d.rows), 1, 1],
        );
    }
}
