//! Llama-style decoder-only models (SmolLM2) from GGUF: configuration, block-quantised
//! weights, the forward pass on the kernels' CPU references and on the GPU, sampling, and
//! the chat template.

mod chat;
mod config;
mod cpu;
mod gpu;
mod sampling;
mod weights;

pub use chat::{ChatMessage, ChatTemplate};
pub use config::LlamaConfig;
pub use cpu::CpuLlama;
pub use gpu::GpuLlama;
pub use sampling::{Sampler, Sampling};
pub use weights::{GpuWeights, HostWeights, LayerWeights, LlamaWeights};

use crate::error::Result;
use crate::kernels::argmax_cpu;

/// Positions the gateway keeps in the KV cache (prompt and completion together): SmolLM2
/// allows 8192, but 2048 keeps the GPU cache at 94 MB and lavapipe's runs short.
pub const MAX_CONTEXT: usize = 2048;

/// A model with a KV cache that runs tokens at the next positions.
pub trait Decoder {
    /// Forgets every cached position.
    fn reset(&mut self);
    /// Positions held in the cache.
    fn position(&self) -> usize;
    /// Runs `ids` (non-empty) at the next positions; the logits after the last one.
    fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>>;
    /// As [`Decoder::next_logits`], the most likely next token only.
    fn next_greedy(&mut self, ids: &[u32]) -> Result<u32> {
        Ok(argmax_cpu(&self.next_logits(ids)?))
    }
}

/// Runs `prompt` from an empty cache, then picks up to `max_tokens` tokens with `sampler`,
/// handing each to `on_token`; stops early when it returns false. Returns the tokens picked.
/// The caller keeps prompt + max_tokens within [`MAX_CONTEXT`].
pub fn generate<D: Decoder + ?Sized>(
    decoder: &mut D,
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Vec<u32>> {
    decoder.reset();
    let mut out = Vec::new();
    let mut input = prompt.to_vec();
    while out.len() < max_tokens {
        let next = if sampler.is_greedy() {
            decoder.next_greedy(&input)?
        } else {
            sampler.sample(&decoder.next_logits(&input)?)
        };
        out.push(next);
        if !on_token(next) {
            break;
        }
        input = vec![next];
    }
    Ok(out)
}

/// SmolLM2-135M-Instruct's GGUF, relative to the repository root (scripts/fetch-models.sh).
pub const SMOLLM2_135M_GGUF: &str = ".cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Everything read from one GGUF file: what both forward passes and the API need.
pub struct LlamaFiles {
    pub cfg: LlamaConfig,
    pub weights: HostWeights,
    pub tokenizer: crate::tokenizer::GgufTokenizer,
    pub chat: ChatTemplate,
}

impl LlamaFiles {
    pub fn load(path: &std::path::Path) -> Result<Self> {
        if !path.is_file() {
            return Err(crate::error::Error::ModelMissing { path: path.into() });
        }
        let file = crate::gguf::Gguf::load(path)?;
        let cfg = LlamaConfig::from_gguf(&file)?;
        let weights = HostWeights::load(&file, &cfg)?;
        let tokenizer = crate::tokenizer::GgufTokenizer::from_gguf(&file)?;
        if tokenizer.vocab_size() != cfg.vocab {
            return Err(crate::error::Error::UnsupportedModel(format!(
                "{} tokens for a vocabulary of {}",
                tokenizer.vocab_size(),
                cfg.vocab
            )));
        }
        let chat = ChatTemplate::from_gguf(&file, &tokenizer)?;
        Ok(Self { cfg, weights, tokenizer, chat })
    }
}
