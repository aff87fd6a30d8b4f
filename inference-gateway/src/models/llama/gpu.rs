//! The Llama forward pass on the GPU: the KV cache stays in GPU memory, every step is one
//! command buffer, and a greedy step reads back 4 bytes (the argmax) instead of the logits.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{
    CachedAttentionDims, LlamaKernels, MatmulVariant, Pass, QMatvecDims, QuantFormat, RopeStoreDims,
    rope_table,
};

use super::{Decoder, GpuWeights, HostWeights, LlamaConfig, MAX_CONTEXT};

pub struct GpuLlama {
    gpu: Gpu,
    kernels: LlamaKernels,
    pub cfg: LlamaConfig,
    weights: GpuWeights,
    rope: wgpu::Buffer,
    /// [layers, MAX_CONTEXT, kv_dim] each.
    k_cache: wgpu::Buffer,
    v_cache: wgpu::Buffer,
    position: usize,
}

/// What a step's command buffer ends with.
enum Head {
    Logits,
    Argmax,
}

impl GpuLlama {
    /// Uploads `host` to the best Vulkan adapter, with the matvec variant that suits it unless
    /// `variant` forces one.
    pub fn new(cfg: LlamaConfig, host: &HostWeights, variant: Option<MatmulVariant>) -> Result<Self> {
        let gpu = Gpu::new()?;
        let kernels = LlamaKernels::new(&gpu.device, variant.unwrap_or_else(|| gpu.preferred_matmul()));
        let weights = host.upload(&gpu, kernels.matmul_variant());
        let rope = gpu.upload_f32("rope", &rope_table(MAX_CONTEXT, cfg.rope_base));
        let cache_len = cfg.layers * MAX_CONTEXT * cfg.kv_dim();
        let k_cache = buffer(&gpu, "k_cache", cache_len, wgpu::BufferUsages::empty());
        let v_cache = buffer(&gpu, "v_cache", cache_len, wgpu::BufferUsages::empty());
        Ok(Self { gpu, kernels, cfg, weights, rope, k_cache, v_cache, position: 0 })
    }

    pub fn adapter(&self) -> &wgpu::AdapterInfo {
        &self.gpu.info
    }

    pub fn matmul_variant(&self) -> MatmulVariant {
        self.kernels.matmul_variant()
    }

    /// Records and submits one step for `ids`; returns the logits (as f32s) or the argmax
    /// (one u32, as the bits of one f32).
    fn step(&mut self, ids: &[u32], head: Head) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (h, f, m, pos0) = (cfg.hidden, cfg.ffn, ids.len(), self.position);
        if m == 0 || pos0 + m > MAX_CONTEXT {
            return Err(Error::Tokenizer(format!(
                "{m} tokens after {pos0}: over the {MAX_CONTEXT}-token context"
            )));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= cfg.vocab) {
            return Err(Error::Tokenizer(format!("token id {id} outside the vocabulary")));
        }
        let gpu = &self.gpu;
        let k = &self.kernels;
        let none = wgpu::BufferUsages::empty();
        let ids_buf = gpu.upload_u32("ids", ids);
        let x = buffer(gpu, "x", m * h, wgpu::BufferUsages::COPY_SRC);
        let xn = buffer(gpu, "xn", m * h, none);
        let qkv = buffer(gpu, "qkv", m * cfg.qkv_dim(), none);
        let ctx = buffer(gpu, "ctx", m * h, none);
        let gate_up = buffer(gpu, "gate_up", m * 2 * f, none);
        let act = buffer(gpu, "act", m * f, none);
        let last = buffer(gpu, "last", h, wgpu::BufferUsages::COPY_DST);
        let last_n = buffer(gpu, "last_n", h, none);
        let logits = buffer(gpu, "logits", cfg.vocab, wgpu::BufferUsages::COPY_SRC);
        let best = buffer(gpu, "argmax", 1, wgpu::BufferUsages::COPY_SRC);
        let q4 = |n: usize, kk: usize| QMatvecDims { m, n, k: kk, format: QuantFormat::Q4_1 };

        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("llama") });
        {
            let mut pass = Pass::new(&gpu.device, &mut encoder);
            k.gather_q8_0(&mut pass, [&ids_buf, &self.weights.token_embd, &x], m, h, cfg.vocab);
            for (l, w) in self.weights.layers.iter().enumerate() {
                let cache_offset = l * MAX_CONTEXT * cfg.kv_dim();
                k.rms_norm(&mut pass, [&x, &w.attn_norm, &xn], m, h, cfg.rms_eps);
                k.qmatvec(&mut pass, [&xn, &w.qkv, &qkv], q4(cfg.qkv_dim(), h), false);
                let rope = RopeStoreDims { m, pos0, heads: cfg.heads, kv_heads: cfg.kv_heads, cache_offset };
                k.rope_store(&mut pass, [&qkv, &self.k_cache, &self.v_cache, &self.rope], rope);
                let attn = CachedAttentionDims { m, pos0, heads: cfg.heads, kv_heads: cfg.kv_heads };
                k.cached_attention(&mut pass, [&qkv, &self.k_cache, &self.v_cache, &ctx], attn, cache_offset);
                k.qmatvec(&mut pass, [&ctx, &w.attn_out, &x], q4(h, h), true);
                k.rms_norm(&mut pass, [&x, &w.ffn_norm, &xn], m, h, cfg.rms_eps);
                k.qmatvec(&mut pass, [&xn, &w.gate_up, &gate_up], q4(2 * f, h), false);
                k.silu_mul(&mut pass, [&gate_up, &act], m, f);
                k.qmatvec(&mut pass, [&act, &w.down, &x], q4(h, f), true);
            }
        }
        // Only the last token's logits are needed: copy its row out, then a second pass in
        // the same command buffer.
        encoder.copy_buffer_to_buffer(&x, ((m - 1) * h * 4) as u64, &last, 0, (h * 4) as u64);
        {
            let mut pass = Pass::new(&gpu.device, &mut encoder);
            k.rms_norm(&mut pass, [&last, &self.weights.output_norm, &last_n], 1, h, cfg.rms_eps);
            let lm_head = QMatvecDims { m: 1, n: cfg.vocab, k: h, format: QuantFormat::Q8_0 };
            k.qmatvec(&mut pass, [&last_n, &self.weights.token_embd, &logits], lm_head, false);
            if matches!(head, Head::Argmax) {
                k.argmax(&mut pass, [&logits, &best], cfg.vocab);
            }
        }
        let out = match head {
            Head::Logits => gpu.submit_and_read(encoder, &logits, cfg.vocab)?,
            Head::Argmax => gpu.submit_and_read(encoder, &best, 1)?,
        };
        self.position += m;
        Ok(out)
    }
}

fn buffer(gpu: &Gpu, label: &str, len: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (len * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

impl Decoder for GpuLlama {
    fn reset(&mut self) {
        // Positions past `position` are never read, so the cache needs no clearing.
        self.position = 0;
    }

    fn position(&self) -> usize {
        self.position
    }

    fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.step(ids, Head::Logits)
    }

    fn next_greedy(&mut self, ids: &[u32]) -> Result<u32> {
        let out = self.step(ids, Head::Argmax)?;
        out.first().map(|v| v.to_bits()).ok_or_else(|| Error::Gpu("argmax read back nothing".into()))
    }
}
