//! The Llama forward pass on the kernels' CPU references: the yardstick the GPU is held to.

use crate::error::{Error, Result};
use crate::kernels::{
    CachedAttentionDims, LLAMA_HEAD_DIM, RopeMode, cached_attention_cpu, gather_rows_cpu, qmatvec_cpu,
    rms_norm_cpu, rope_cpu, rope_table, silu_mul_cpu,
};

use super::{Decoder, HostWeights, LlamaConfig, MAX_CONTEXT};

pub struct CpuLlama {
    pub cfg: LlamaConfig,
    pub weights: HostWeights,
    rope: Vec<f32>,
    /// Which RoPE pairing to use: [`RopeMode::Adjacent`] for llama.cpp's GGUFs; NeoX exists to
    /// show, by perplexity, that it is the wrong one.
    pub rope_mode: RopeMode,
    /// Per layer, [positions, kv_dim].
    k_cache: Vec<Vec<f32>>,
    v_cache: Vec<Vec<f32>>,
    position: usize,
}

impl CpuLlama {
    pub fn new(cfg: LlamaConfig, weights: HostWeights) -> Self {
        let rope = rope_table(MAX_CONTEXT, cfg.rope_base);
        let layers = cfg.layers;
        Self {
            cfg,
            weights,
            rope,
            rope_mode: RopeMode::Adjacent,
            k_cache: vec![Vec::new(); layers],
            v_cache: vec![Vec::new(); layers],
            position: 0,
        }
    }

    /// Runs `ids` at the next positions and returns the final hidden states, [m, hidden]
    /// (before the output norm).
    fn hidden(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (h, kvd, m, pos0) = (cfg.hidden, cfg.kv_dim(), ids.len(), self.position);
        if m == 0 || pos0 + m > MAX_CONTEXT {
            return Err(Error::Tokenizer(format!(
                "{m} tokens after {pos0}: over the {MAX_CONTEXT}-token context"
            )));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= cfg.vocab) {
            return Err(Error::Tokenizer(format!("token id {id} outside the vocabulary")));
        }
        let mut x = gather_rows_cpu(&self.weights.token_embd, ids);
        for (l, w) in self.weights.layers.iter().enumerate() {
            let xn = rms_norm_cpu(&x, &w.attn_norm, cfg.rms_eps);
            let mut qkv = qmatvec_cpu(&xn, &w.qkv, None);
            let mut q = Vec::with_capacity(m * h);
            for (t, row) in qkv.chunks_exact_mut(cfg.qkv_dim()).enumerate() {
                for head in row[..h + kvd].chunks_exact_mut(LLAMA_HEAD_DIM) {
                    rope_cpu(head, pos0 + t, &self.rope, self.rope_mode);
                }
                q.extend_from_slice(&row[..h]);
                self.k_cache[l].extend_from_slice(&row[h..h + kvd]);
                self.v_cache[l].extend_from_slice(&row[h + kvd..]);
            }
            let dims = CachedAttentionDims { m, pos0, heads: cfg.heads, kv_heads: cfg.kv_heads };
            let ctx = cached_attention_cpu(&q, &self.k_cache[l], &self.v_cache[l], dims);
            x = qmatvec_cpu(&ctx, &w.attn_out, Some(&x));
            let xn = rms_norm_cpu(&x, &w.ffn_norm, cfg.rms_eps);
            let act = silu_mul_cpu(&qmatvec_cpu(&xn, &w.gate_up, None), cfg.ffn);
            x = qmatvec_cpu(&act, &w.down, Some(&x));
        }
        self.position += m;
        Ok(x)
    }

    /// Runs `ids` at the next positions and returns the logits after every one of them,
    /// [m, vocab]: what perplexity needs.
    pub fn all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let x = self.hidden(ids)?;
        let xn = rms_norm_cpu(&x, &self.weights.output_norm, self.cfg.rms_eps);
        Ok(qmatvec_cpu(&xn, &self.weights.token_embd, None))
    }
}

impl Decoder for CpuLlama {
    fn reset(&mut self) {
        self.k_cache.iter_mut().chain(self.v_cache.iter_mut()).for_each(Vec::clear);
        self.position = 0;
    }

    fn position(&self) -> usize {
        self.position
    }

    fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let x = self.hidden(ids)?;
        let last = &x[x.len() - self.cfg.hidden..];
        let xn = rms_norm_cpu(last, &self.weights.output_norm, self.cfg.rms_eps);
        Ok(qmatvec_cpu(&xn, &self.weights.token_embd, None))
    }
}
