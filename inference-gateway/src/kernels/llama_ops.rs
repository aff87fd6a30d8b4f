//! The Llama kernels besides the quantised matvec: RMSNorm, RoPE (with the KV-cache store),
//! causal attention over the cache, SiLU-gated product, and argmax; the CPU references and
//! their recording functions.

use super::{LlamaKernels, MatmulVariant, Pass, div_ceil, group_per_row};

/// Values per attention head in Llama models (SmolLM2: 576 / 9); the kernels assume it.
pub const HEAD_DIM: usize = 64;

/// How RoPE pairs a head's 64 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeMode {
    /// ggml's "normal" mode: pairs (x[2i], x[2i+1]). Right for GGUFs that llama.cpp's
    /// converter wrote, since it permutes the Q and K rows into this order.
    Adjacent,
    /// GPT-NeoX / Hugging Face: pairs (x[i], x[i + 32]). Kept only to show it is wrong here.
    NeoX,
}

/// CPU reference: x * gamma / sqrt(mean(x²) + eps), row by row.
pub fn rms_norm_cpu(x: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let dim = gamma.len();
    let mut out = vec![0.0f32; x.len()];
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / dim as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, v), g) in or.iter_mut().zip(xr).zip(gamma) {
            *o = v * inv * g;
        }
    }
    out
}

/// (cos, sin) of pos * base^(-2i / 64) for every position below `positions` and pair i < 32,
/// [positions, 32, 2]: computed once on the host (in f64, then rounded) and read by both the
/// shader and the CPU reference, so they rotate by identical values.
pub fn rope_table(positions: usize, base: f32) -> Vec<f32> {
    let mut t = Vec::with_capacity(positions * HEAD_DIM);
    for pos in 0..positions {
        for i in 0..HEAD_DIM / 2 {
            let angle = pos as f64 * f64::from(base).powf(-((2 * i) as f64) / HEAD_DIM as f64);
            t.push(angle.cos() as f32);
            t.push(angle.sin() as f32);
        }
    }
    t
}

/// CPU reference: rotates one head's 64 values for position `pos` by [`rope_table`].
pub fn rope_cpu(head: &mut [f32], pos: usize, table: &[f32], mode: RopeMode) {
    for i in 0..HEAD_DIM / 2 {
        let (a, b) = match mode {
            RopeMode::Adjacent => (2 * i, 2 * i + 1),
            RopeMode::NeoX => (i, i + HEAD_DIM / 2),
        };
        let (cos, sin) = (table[(pos * HEAD_DIM / 2 + i) * 2], table[(pos * HEAD_DIM / 2 + i) * 2 + 1]);
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos - x1 * sin;
        head[b] = x0 * sin + x1 * cos;
    }
}

/// Shapes for attention over a KV cache: `m` new tokens at positions pos0.., each attending
/// to every cached position up to its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedAttentionDims {
    /// New tokens (rows of `q`).
    pub m: usize,
    /// Position of the first new token: how many were cached before it.
    pub pos0: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads, shared by `heads / kv_heads` query heads each.
    pub kv_heads: usize,
}

/// CPU reference: `q` is [m, heads * 64]; `k_cache`, `v_cache` are [positions, kv_heads * 64]
/// with positions 0..pos0 + m filled. Returns [m, heads * 64]. Query head h reads KV head
/// h / (heads / kv_heads), as grouped-query attention shares them.
pub fn cached_attention_cpu(q: &[f32], k_cache: &[f32], v_cache: &[f32], d: CachedAttentionDims) -> Vec<f32> {
    let (qw, kw) = (d.heads * HEAD_DIM, d.kv_heads * HEAD_DIM);
    let group = d.heads / d.kv_heads;
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    let mut out = vec![0.0f32; d.m * qw];
    for t in 0..d.m {
        let len = d.pos0 + t + 1;
        for h in 0..d.heads {
            let qh = &q[t * qw + h * HEAD_DIM..][..HEAD_DIM];
            let kv = (h / group) * HEAD_DIM;
            let scores: Vec<f32> = (0..len)
                .map(|p| {
                    qh.iter().zip(&k_cache[p * kw + kv..][..HEAD_DIM]).map(|(a, b)| a * b).sum::<f32>()
                        * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f32 = weights.iter().sum();
            let o = &mut out[t * qw + h * HEAD_DIM..][..HEAD_DIM];
            for (p, w) in weights.iter().enumerate() {
                for (oj, vj) in o.iter_mut().zip(&v_cache[p * kw + kv..][..HEAD_DIM]) {
                    *oj += w / total * vj;
                }
            }
        }
    }
    out
}

fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// CPU reference: `gate_up` is [m, 2 * ffn] (gate rows then up rows of the fused
/// projection); returns silu(gate) * up, [m, ffn].
pub fn silu_mul_cpu(gate_up: &[f32], ffn: usize) -> Vec<f32> {
    gate_up
        .chunks_exact(2 * ffn)
        .flat_map(|r| r[..ffn].iter().zip(&r[ffn..]).map(|(g, u)| silu(*g) * u))
        .collect()
}

/// CPU reference: the index of the largest value, the first one on ties (as the shader).
pub fn argmax_cpu(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// Where one layer's keys and values go: the caches hold `slots` sequences, each
/// [layers, positions, kv_heads * 64], for K and the same for V. Which row of `qkv` is which
/// (slot, position) comes in a storage buffer of [`KvRow`]s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvCacheDims {
    /// Rows of qkv (and of the row table).
    pub m: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads` must be a multiple of it).
    pub kv_heads: usize,
    /// Offset of this layer's first position inside a slot, in f32s.
    pub layer_offset: usize,
    /// f32s per slot.
    pub slot_stride: usize,
}

impl KvCacheDims {
    fn params(&self) -> [u32; 8] {
        [
            self.m as u32,
            self.heads as u32,
            self.kv_heads as u32,
            self.layer_offset as u32,
            self.slot_stride as u32,
            0,
            0,
            0,
        ]
    }

    fn check(&self) {
        assert!(
            self.m > 0 && self.kv_heads > 0 && self.heads.is_multiple_of(self.kv_heads),
            "kv cache dims {self:?}"
        );
    }
}

/// One row of a KV-cache dispatch: the sequence's slot and the row's position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvRow {
    /// The KV-cache slot of the row's sequence.
    pub slot: usize,
    /// The row's position in its sequence.
    pub pos: usize,
}

impl KvRow {
    /// The row table as the shaders read it: (slot, pos) pairs of u32s.
    pub fn words(rows: &[KvRow]) -> Vec<u32> {
        rows.iter().flat_map(|r| [r.slot as u32, r.pos as u32]).collect()
    }
}

impl LlamaKernels {
    /// Records out = RMSNorm(x) * gamma for `rows` rows of `dim`.
    pub fn rms_norm(
        &self,
        pass: &mut Pass<'_>,
        [x, gamma, out]: [&wgpu::Buffer; 3],
        rows: usize,
        dim: usize,
        eps: f32,
    ) {
        assert!(rows > 0 && dim.is_multiple_of(4), "rms norm {rows} x {dim}");
        let params = [dim as u32, eps.to_bits(), 0, 0];
        pass.dispatch(&self.rms_norm, &params, &[x, gamma, out], [group_per_row(rows), 1, 1]);
    }

    /// Records RoPE (adjacent pairs) on the Q and K parts of `qkv` ([m, (heads + 2 kv) * 64])
    /// in place, and copies the rotated K and the V of each row into its slot of the caches at
    /// its position. `rows` holds m [`KvRow`]s; `table` is [`rope_table`] covering every
    /// position named there.
    pub fn rope_store(
        &self,
        pass: &mut Pass<'_>,
        [qkv, k_cache, v_cache, table, rows]: [&wgpu::Buffer; 5],
        d: KvCacheDims,
    ) {
        d.check();
        let pairs = (d.heads + 2 * d.kv_heads) * HEAD_DIM / 2;
        pass.dispatch(
            &self.rope_store,
            &d.params(),
            &[qkv, k_cache, v_cache, table, rows],
            [div_ceil(pairs, 64), d.m as u32, 1],
        );
    }

    /// Records causal attention of the Q part of `qkv` into `out`, [m, heads * 64]: each row
    /// over its own slot of the caches (this layer's part), up to its own position.
    pub fn cached_attention(
        &self,
        pass: &mut Pass<'_>,
        [qkv, k_cache, v_cache, out, rows]: [&wgpu::Buffer; 5],
        d: KvCacheDims,
    ) {
        d.check();
        // Along the heads: 64 to a workgroup of the per-thread shader, one of flash-decoding's.
        let heads = match self.variant {
            MatmulVariant::Vec4 => div_ceil(d.heads, 64),
            MatmulVariant::Tiled => group_per_row(d.heads),
        };
        pass.dispatch(
            &self.attention,
            &d.params(),
            &[qkv, k_cache, v_cache, out, rows],
            [heads, group_per_row(d.m), 1],
        );
    }

    /// Records out = silu(gate) * up from the fused [m, 2 * ffn] projection.
    pub fn silu_mul(&self, pass: &mut Pass<'_>, [gate_up, out]: [&wgpu::Buffer; 2], m: usize, ffn: usize) {
        assert!(m > 0 && ffn > 0, "silu dims {m} x {ffn}");
        let params = [m as u32, ffn as u32, 0, 0];
        pass.dispatch(&self.silu_mul, &params, &[gate_up, out], [div_ceil(m * ffn, 64), 1, 1]);
    }

    /// Records out[r] = argmax(row r of x, [rows, len]) as a u32 (the first on ties).
    pub fn argmax(&self, pass: &mut Pass<'_>, [x, out]: [&wgpu::Buffer; 2], rows: usize, len: usize) {
        assert!(rows > 0 && len > 0, "argmax of nothing");
        let params = [len as u32, 0, 0, 0];
        pass.dispatch(&self.argmax, &params, &[x, out], [rows as u32, 1, 1]);
    }
}
