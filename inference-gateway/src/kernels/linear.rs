//! Linear layer: y = x · wᵀ + b, optionally followed by GELU.

use super::{Kernels, MatmulVariant, Pass, div_ceil};

/// `x` is [m, k], `w` is [n, k] (PyTorch's [out, in]), `b` is [n], `y` is [m, n]. The GPU
/// kernels take the weight input-major instead, [k, n]: see [`to_input_major`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearDims {
    /// Rows of `x` and `y` (tokens).
    pub m: usize,
    /// Outputs per row: rows of `w`, length of `b`.
    pub n: usize,
    /// Inputs per row: columns of `x` and `w`.
    pub k: usize,
}

/// What is applied to each output of a linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing: the output is x · wᵀ + b.
    None,
    /// The exact (erf) GELU that BERT uses.
    Gelu,
}

/// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): the same formula as the shader,
/// since WGSL has no erf and std's is not stable.
pub fn erf_approx(x: f32) -> f32 {
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * ax);
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-ax * ax).exp();
    if x < 0.0 { -y } else { y }
}

fn gelu(v: f32) -> f32 {
    0.5 * v * (1.0 + erf_approx(v * std::f32::consts::FRAC_1_SQRT_2))
}

/// CPU reference.
pub fn linear_cpu(x: &[f32], w: &[f32], b: &[f32], d: LinearDims, act: Activation) -> Vec<f32> {
    assert_eq!(x.len(), d.m * d.k, "x shape");
    assert_eq!(w.len(), d.n * d.k, "w shape");
    assert_eq!(b.len(), d.n, "bias shape");
    let mut y = vec![0.0f32; d.m * d.n];
    for (xr, yr) in x.chunks_exact(d.k).zip(y.chunks_exact_mut(d.n)) {
        for ((wr, out), bias) in w.chunks_exact(d.k).zip(yr.iter_mut()).zip(b) {
            // Four partial sums: fewer dependent adds, so even unoptimised builds stay usable.
            let mut s = [0.0f32; 4];
            for (xc, wc) in xr.chunks_exact(4).zip(wr.chunks_exact(4)) {
                s[0] += xc[0] * wc[0];
                s[1] += xc[1] * wc[1];
                s[2] += xc[2] * wc[2];
                s[3] += xc[3] * wc[3];
            }
            let v = (s[0] + s[1]) + (s[2] + s[3]) + bias;
            *out = match act {
                Activation::None => v,
                Activation::Gelu => gelu(v),
            };
        }
    }
    y
}

/// Transposes a PyTorch [n, k] weight to the [k, n] layout the GPU kernels read: there,
/// neighbouring invocations compute neighbouring outputs and so load neighbouring weights.
pub fn to_input_major(w: &[f32], d: LinearDims) -> Vec<f32> {
    assert_eq!(w.len(), d.n * d.k, "w shape");
    let mut t = vec![0.0f32; w.len()];
    for (n, row) in w.chunks_exact(d.k).enumerate() {
        for (k, v) in row.iter().enumerate() {
            t[k * d.n + n] = *v;
        }
    }
    t
}

/// Output block of one invocation of linear_vec4.wgsl (its ROWS and COLS4 * 4).
const VEC4_ROWS: usize = 16;
const VEC4_COLS: usize = 16;

impl Kernels {
    /// Records y = act(x · wt + b), `wt` being the weight from [`to_input_major`]. Requires
    /// `n` and `k` to be multiples of 4 and m, n, k > 0.
    pub fn linear(
        &self,
        pass: &mut Pass<'_>,
        [x, wt, b, y]: [&wgpu::Buffer; 4],
        d: LinearDims,
        act: Activation,
    ) {
        assert!(
            d.m > 0 && d.n > 0 && d.k > 0 && d.n.is_multiple_of(4) && d.k.is_multiple_of(4),
            "linear dims {d:?}"
        );
        let params = [d.m as u32, d.n as u32, d.k as u32, u32::from(act == Activation::Gelu)];
        let groups = match self.variant {
            // Workgroup 16 x 4 invocations, each VEC4_COLS x VEC4_ROWS outputs.
            MatmulVariant::Vec4 => [div_ceil(d.n / 4, 16 * VEC4_COLS / 4), div_ceil(d.m, 4 * VEC4_ROWS), 1],
            MatmulVariant::Tiled => [div_ceil(d.n, 64), div_ceil(d.m, 64), 1],
        };
        pass.dispatch(&self.linear, &params, &[x, wt, b, y], groups);
    }
}
