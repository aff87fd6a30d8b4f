//! The Llama forward pass on the kernels' CPU references: the yardstick the GPU is held to.

use crate::error::Result;
use crate::kernels::{
    CachedAttentionDims, LLAMA_HEAD_DIM, RopeMode, cached_attention_cpu, gather_rows_cpu, qmatvec_cpu,
    rms_norm_cpu, rope_cpu, rope_table, silu_mul_cpu,
};

use super::{Decoder, HostWeights, LlamaConfig, MAX_CONTEXT, SeqStep, check_steps};

/// The Llama decoder run on the CPU references, with a KV cache in host memory.
pub struct CpuLlama {
    /// The model's hyper-parameters.
    pub cfg: LlamaConfig,
    /// The block-quantised weights, as read from the GGUF.
    pub weights: HostWeights,
    rope: Vec<f32>,
    /// Which RoPE pairing to use: [`RopeMode::Adjacent`] for llama.cpp's GGUFs; NeoX exists to
    /// show, by perplexity, that it is the wrong one.
    pub rope_mode: RopeMode,
    /// Per slot, per layer, [positions, kv_dim]; a slot's position is its length.
    k_cache: Vec<Vec<Vec<f32>>>,
    v_cache: Vec<Vec<Vec<f32>>>,
    passes: u64,
}

impl CpuLlama {
    /// The model with an empty KV cache of one slot, RoPE in adjacent pairs.
    pub fn new(cfg: LlamaConfig, weights: HostWeights) -> Self {
        let rope = rope_table(MAX_CONTEXT, cfg.rope_base);
        let layers = cfg.layers;
        Self {
            cfg,
            weights,
            rope,
            rope_mode: RopeMode::Adjacent,
            k_cache: vec![vec![Vec::new(); layers]],
            v_cache: vec![vec![Vec::new(); layers]],
            passes: 0,
        }
    }

    /// The same model with a cache of `slots` sequences (at least one).
    pub fn with_slots(mut self, slots: usize) -> Self {
        let layers = self.cfg.layers;
        self.k_cache = vec![vec![Vec::new(); layers]; slots.max(1)];
        self.v_cache = vec![vec![Vec::new(); layers]; slots.max(1)];
        self
    }

    /// Runs `ids` at `slot`'s next positions and returns the final hidden states,
    /// [m, hidden] (before the output norm). The caller has checked the step.
    fn hidden(&mut self, slot: usize, ids: &[u32]) -> Vec<f32> {
        let cfg = &self.cfg;
        let (h, kvd, m, pos0) = (cfg.hidden, cfg.kv_dim(), ids.len(), self.slot_position(slot));
        let (k_cache, v_cache) = (&mut self.k_cache[slot], &mut self.v_cache[slot]);
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
                k_cache[l].extend_from_slice(&row[h..h + kvd]);
                v_cache[l].extend_from_slice(&row[h + kvd..]);
            }
            let dims = CachedAttentionDims { m, pos0, heads: cfg.heads, kv_heads: cfg.kv_heads };
            let ctx = cached_attention_cpu(&q, &k_cache[l], &v_cache[l], dims);
            x = qmatvec_cpu(&ctx, &w.attn_out, Some(&x));
            let xn = rms_norm_cpu(&x, &w.ffn_norm, cfg.rms_eps);
            let act = silu_mul_cpu(&qmatvec_cpu(&xn, &w.gate_up, None), cfg.ffn);
            x = qmatvec_cpu(&act, &w.down, Some(&x));
        }
        x
    }

    /// Runs `ids` at slot 0's next positions and returns the logits after every one of them,
    /// [m, vocab]: what perplexity needs.
    pub fn all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        check_steps(&[SeqStep { slot: 0, ids }], self.slots(), self.cfg.vocab, |s| self.slot_position(s))?;
        self.passes += 1;
        let x = self.hidden(0, ids);
        let xn = rms_norm_cpu(&x, &self.weights.output_norm, self.cfg.rms_eps);
        Ok(qmatvec_cpu(&xn, &self.weights.token_embd, None))
    }
}

impl Decoder for CpuLlama {
    fn slots(&self) -> usize {
        self.k_cache.len()
    }

    fn reset_slot(&mut self, slot: usize) {
        let caches = self.k_cache.get_mut(slot).into_iter().chain(self.v_cache.get_mut(slot));
        caches.flatten().for_each(Vec::clear);
    }

    fn slot_position(&self, slot: usize) -> usize {
        self.k_cache.get(slot).and_then(|layers| layers.first()).map_or(0, |k| k.len() / self.cfg.kv_dim())
    }

    /// The reference runs the sequences one after the other: only the count says "one pass".
    fn forward_logits(&mut self, steps: &[SeqStep<'_>]) -> Result<Vec<Vec<f32>>> {
        check_steps(steps, self.slots(), self.cfg.vocab, |s| self.slot_position(s))?;
        self.passes += 1;
        let h = self.cfg.hidden;
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let x = self.hidden(step.slot, step.ids);
            let xn = rms_norm_cpu(&x[x.len() - h..], &self.weights.output_norm, self.cfg.rms_eps);
            out.push(qmatvec_cpu(&xn, &self.weights.token_embd, None));
        }
        Ok(out)
    }

    fn passes(&self) -> u64 {
        self.passes
    }
}
