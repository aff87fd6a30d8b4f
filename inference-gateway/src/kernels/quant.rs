//! Block-quantised weight matrices (GGUF Q4_1 and Q8_0) and the matrix-vector products that
//! read them block by block, never dequantising the whole matrix.

use super::{LlamaKernels, MatmulVariant, Pass, div_ceil};
use crate::formats::gguf::{self, BLOCK, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, TensorType};

/// How a [`QMatrix`]'s rows are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantFormat {
    /// GGUF Q4_1: 20-byte blocks of 4-bit weights with an f16 scale and minimum.
    Q4_1,
    /// GGUF Q8_0: 34-byte blocks of int8 weights with an f16 scale.
    Q8_0,
}

impl QuantFormat {
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => Q4_1_BLOCK_BYTES,
            Self::Q8_0 => Q8_0_BLOCK_BYTES,
        }
    }

    /// The format of a quantised GGUF tensor; `None` for F32.
    pub fn from_tensor_type(ty: TensorType) -> Option<Self> {
        match ty {
            TensorType::Q4_1 => Some(Self::Q4_1),
            TensorType::Q8_0 => Some(Self::Q8_0),
            TensorType::F32 => None,
        }
    }
}

/// A [rows, cols] matrix stored row by row in 32-weight blocks, as in the GGUF file
/// (PyTorch's [out, in]; `cols` is a multiple of 32).
#[derive(Debug, Clone, PartialEq)]
pub struct QMatrix {
    /// How the blocks are encoded.
    pub format: QuantFormat,
    /// Output dimension (PyTorch's out).
    pub rows: usize,
    /// Input dimension (PyTorch's in), a multiple of 32.
    pub cols: usize,
    /// The blocks as in the file, row by row.
    pub bytes: Vec<u8>,
}

impl QMatrix {
    /// `bytes` must hold rows * cols / 32 blocks; returns `None` otherwise.
    pub fn new(format: QuantFormat, rows: usize, cols: usize, bytes: Vec<u8>) -> Option<Self> {
        let ok = cols.is_multiple_of(BLOCK) && bytes.len() == rows * cols / BLOCK * format.block_bytes();
        ok.then_some(Self { format, rows, cols, bytes })
    }

    /// Stacks matrices with the same format and width (e.g. Q, K and V into one projection).
    pub fn concat_rows(parts: &[QMatrix]) -> Option<Self> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.format != first.format || p.cols != first.cols) {
            return None;
        }
        let bytes = parts.iter().flat_map(|p| p.bytes.iter().copied()).collect();
        Self::new(first.format, parts.iter().map(|p| p.rows).sum(), first.cols, bytes)
    }

    /// Row `r` dequantised into `out` (cols values).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let bb = self.format.block_bytes();
        let row_bytes = self.cols / BLOCK * bb;
        let row = &self.bytes[r * row_bytes..(r + 1) * row_bytes];
        for (b, o) in row.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
            match self.format {
                QuantFormat::Q4_1 => gguf::dequantize_q4_1_block(b, o),
                QuantFormat::Q8_0 => gguf::dequantize_q8_0_block(b, o),
            }
        }
    }

    /// The matrix as 32-bit words, block by block in row-major order: Q4_1's 20-byte blocks as
    /// they are (5 words); Q8_0's 34-byte blocks repacked to an f32 scale and 8 words of int8s
    /// (9 words), since WGSL reads storage only in aligned 4-byte words.
    fn block_words(&self) -> Vec<u32> {
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        match self.format {
            QuantFormat::Q4_1 => self.bytes.chunks_exact(4).map(word).collect(),
            QuantFormat::Q8_0 => {
                let mut out = Vec::with_capacity(self.bytes.len() / Q8_0_BLOCK_BYTES * 9);
                for b in self.bytes.chunks_exact(Q8_0_BLOCK_BYTES) {
                    let d = gguf::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                    out.push(d.to_bits());
                    out.extend(b[2..].chunks_exact(4).map(word));
                }
                out
            }
        }
    }

    fn words_per_block(&self) -> usize {
        match self.format {
            QuantFormat::Q4_1 => 5,
            QuantFormat::Q8_0 => 9,
        }
    }

    /// The words the GPU kernels of `variant` read. Tiled: [`Self::block_words`] as they are,
    /// where the 32 invocations of a row read its consecutive blocks. Vec4: word j of block b
    /// of every row side by side, [blocks per row, words per block, rows], so the invocations
    /// of a workgroup (neighbouring rows, run as SIMD lanes on a CPU adapter) load
    /// neighbouring words instead of gathering from rows kilobytes apart.
    pub fn gpu_words(&self, variant: MatmulVariant) -> Vec<u32> {
        let words = self.block_words();
        if variant == MatmulVariant::Tiled {
            return words;
        }
        let (wpb, blocks) = (self.words_per_block(), self.cols / BLOCK);
        let mut out = vec![0u32; words.len()];
        for (row, row_words) in words.chunks_exact(blocks * wpb).enumerate() {
            for (i, w) in row_words.iter().enumerate() {
                out[i * self.rows + row] = *w;
            }
        }
        out
    }
}

/// CPU reference: y = x · wᵀ for `x` [m, cols], giving [m, rows]; with `accumulate`, y is
/// added to what `y_in` holds (the residual), which must then be [m, rows].
pub fn qmatvec_cpu(x: &[f32], w: &QMatrix, residual: Option<&[f32]>) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    assert!(x.len().is_multiple_of(k), "x shape");
    let m = x.len() / k;
    let mut y = residual.map_or_else(|| vec![0.0f32; m * n], <[f32]>::to_vec);
    assert_eq!(y.len(), m * n, "residual shape");
    let mut row = vec![0.0f32; k];
    for r in 0..n {
        w.row_into(r, &mut row);
        for (t, xr) in x.chunks_exact(k).enumerate() {
            // Per-block partial sums, added in block order: the order the shaders use.
            let mut acc = 0.0f32;
            for (xb, wb) in xr.chunks_exact(BLOCK).zip(row.chunks_exact(BLOCK)) {
                let mut s = [0.0f32; 4];
                for (xc, wc) in xb.chunks_exact(4).zip(wb.chunks_exact(4)) {
                    s[0] += xc[0] * wc[0];
                    s[1] += xc[1] * wc[1];
                    s[2] += xc[2] * wc[2];
                    s[3] += xc[3] * wc[3];
                }
                acc += (s[0] + s[1]) + (s[2] + s[3]);
            }
            y[t * n + r] += acc;
        }
    }
    y
}

/// CPU reference: rows `ids` of `table`, dequantised, [ids.len(), cols].
pub fn gather_rows_cpu(table: &QMatrix, ids: &[u32]) -> Vec<f32> {
    let mut out = vec![0.0f32; ids.len() * table.cols];
    for (&id, o) in ids.iter().zip(out.chunks_exact_mut(table.cols)) {
        table.row_into(id as usize, o);
    }
    out
}

/// Rows per invocation of matvec_vec4.wgsl (its ROWS).
const VEC4_ROWS: usize = 8;

/// Shape of a recorded quantised matvec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QMatvecDims {
    /// Rows of `x` and `y` (tokens).
    pub m: usize,
    /// Rows of `w`: outputs per token.
    pub n: usize,
    /// Columns of `x` and `w`, a multiple of 32.
    pub k: usize,
    /// How `w` is encoded.
    pub format: QuantFormat,
}

impl LlamaKernels {
    /// Records y = x · wᵀ (+ y when `accumulate`) for `w` uploaded from [`QMatrix::gpu_words`]
    /// for this kernel set's variant.
    pub fn qmatvec(
        &self,
        pass: &mut Pass<'_>,
        [x, w, y]: [&wgpu::Buffer; 3],
        d: QMatvecDims,
        accumulate: bool,
    ) {
        assert!(d.m > 0 && d.n > 0 && d.k > 0 && d.k.is_multiple_of(BLOCK), "qmatvec dims {d:?}");
        let kernel = match d.format {
            QuantFormat::Q4_1 => &self.matvec_q4_1,
            QuantFormat::Q8_0 => &self.matvec_q8_0,
        };
        // The tiled kernel stages one token's x in 2048 floats of shared memory.
        assert!(self.variant == MatmulVariant::Vec4 || d.k <= 2048, "qmatvec k {} over 2048", d.k);
        let params = [d.m as u32, d.n as u32, d.k as u32, u32::from(accumulate)];
        let groups = match self.variant {
            // VEC4_ROWS rows per invocation, 64 invocations per workgroup.
            MatmulVariant::Vec4 => [div_ceil(d.n.div_ceil(VEC4_ROWS), 64), d.m as u32, 1],
            // 8 rows per workgroup of 256: 32 invocations share one row's blocks.
            MatmulVariant::Tiled => [div_ceil(d.n, 8), d.m as u32, 1],
        };
        pass.dispatch(kernel, &params, &[x, w, y], groups);
    }

    /// Records out[t] = dequantised row ids[t] of `table` (Q8_0, `table_rows` x `dim`, laid out by
    /// [`QMatrix::gpu_words`] for this variant), [m, dim].
    pub fn gather_q8_0(
        &self,
        pass: &mut Pass<'_>,
        [ids, table, out]: [&wgpu::Buffer; 3],
        m: usize,
        dim: usize,
        table_rows: usize,
    ) {
        assert!(m > 0 && dim.is_multiple_of(BLOCK), "gather dims {m} x {dim}");
        let params =
            [m as u32, dim as u32, u32::from(self.variant == MatmulVariant::Vec4), table_rows as u32];
        pass.dispatch(&self.gather_q8_0, &params, &[ids, table, out], [div_ceil(m * dim, 64), 1, 1]);
    }
}
