//! Llama-style decoder-only models (SmolLM2) from GGUF: configuration, block-quantised
//! weights, the tokenizer, the forward pass on the kernels' CPU references and on the GPU,
//! sampling, the chat template, and the worker thread that owns the decoder.

mod batch;
mod chat;
mod config;
mod cpu;
mod gpu;
mod sampling;
pub mod tokenizer;
mod weights;
pub mod worker;

pub use batch::{Sequence, run_batches};
pub use chat::{ChatMessage, ChatTemplate};
pub use config::LlamaConfig;
pub use cpu::CpuLlama;
pub use gpu::GpuLlama;
pub use sampling::{Sampler, Sampling};
pub use weights::{GpuWeights, HostWeights, LayerWeights, LlamaWeights};

use crate::error::{Error, Result};
use crate::kernels::argmax_cpu;

/// Positions the gateway keeps in the KV cache (prompt and completion together): SmolLM2
/// allows 8192, but 2048 keeps the GPU cache at 94 MB and lavapipe's runs short.
pub const MAX_CONTEXT: usize = 2048;

/// Sequences the GPU model decodes together by default: each needs its own KV-cache slot
/// (94 MB at [`MAX_CONTEXT`]), and the weights are read once per step for all of them.
pub const DEFAULT_BATCH: usize = 4;

/// Tokens for one sequence in a forward pass: `ids` (non-empty) run at the next positions of
/// the KV-cache slot `slot`.
#[derive(Debug, Clone, Copy)]
pub struct SeqStep<'a> {
    /// The KV-cache slot of the sequence.
    pub slot: usize,
    /// Token ids to run, non-empty.
    pub ids: &'a [u32],
}

/// A model with a KV cache of [`Decoder::slots`] sequences that runs tokens at each
/// sequence's next positions. The single-sequence methods use slot 0.
pub trait Decoder {
    /// Sequences the cache holds at once.
    fn slots(&self) -> usize;
    /// Forgets every position cached in `slot`.
    fn reset_slot(&mut self, slot: usize);
    /// Positions held in `slot`.
    fn slot_position(&self, slot: usize) -> usize;
    /// Runs every step (distinct slots) in one forward pass; per step, in order, the logits
    /// after its last token.
    fn forward_logits(&mut self, steps: &[SeqStep<'_>]) -> Result<Vec<Vec<f32>>>;
    /// As [`Decoder::forward_logits`], the most likely next token of each step only.
    fn forward_greedy(&mut self, steps: &[SeqStep<'_>]) -> Result<Vec<u32>> {
        Ok(self.forward_logits(steps)?.iter().map(|l| argmax_cpu(l)).collect())
    }
    /// Forward passes run so far: how the batching is seen to share them.
    fn passes(&self) -> u64;

    /// Forgets every position cached in slot 0.
    fn reset(&mut self) {
        self.reset_slot(0);
    }
    /// Positions held in slot 0.
    fn position(&self) -> usize {
        self.slot_position(0)
    }
    /// Runs `ids` (non-empty) at slot 0's next positions; the logits after the last one.
    fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = self.forward_logits(&[SeqStep { slot: 0, ids }])?;
        out.pop().ok_or_else(|| Error::Gpu("a forward pass returned no logits".into()))
    }
    /// As [`Decoder::next_logits`], the most likely next token only.
    fn next_greedy(&mut self, ids: &[u32]) -> Result<u32> {
        let mut out = self.forward_greedy(&[SeqStep { slot: 0, ids }])?;
        out.pop().ok_or_else(|| Error::Gpu("a forward pass returned no token".into()))
    }
}

/// Refuses `steps` that a forward pass cannot run: empty, a slot out of range or named
/// twice, too many tokens for the context, or an id outside the vocabulary.
pub(crate) fn check_steps(
    steps: &[SeqStep<'_>],
    slots: usize,
    vocab: usize,
    position: impl Fn(usize) -> usize,
) -> Result<()> {
    let invalid = |why: String| Err(Error::Tokenizer(why));
    if steps.is_empty() {
        return invalid("a forward pass of no sequences".into());
    }
    for (i, s) in steps.iter().enumerate() {
        if s.slot >= slots || steps[..i].iter().any(|o| o.slot == s.slot) {
            return invalid(format!("slot {} out of {slots} or named twice", s.slot));
        }
        let (m, pos0) = (s.ids.len(), position(s.slot));
        if m == 0 || pos0 + m > MAX_CONTEXT {
            return invalid(format!("{m} tokens after {pos0}: over the {MAX_CONTEXT}-token context"));
        }
        if let Some(id) = s.ids.iter().find(|&&id| id as usize >= vocab) {
            return invalid(format!("token id {id} outside the vocabulary"));
        }
    }
    Ok(())
}

/// Runs `prompt` from an empty slot 0, then picks up to `max_tokens` tokens with `sampler`,
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
    /// The hyper-parameters from the `llama.*` metadata.
    pub cfg: LlamaConfig,
    /// The weights, still block-quantised.
    pub weights: HostWeights,
    /// The tokenizer built from `tokenizer.ggml.*`.
    pub tokenizer: crate::models::llama::tokenizer::GgufTokenizer,
    /// The ChatML template for chat prompts.
    pub chat: ChatTemplate,
}

impl LlamaFiles {
    /// Reads the GGUF at `path`, checking that its tokenizer and config agree on the vocabulary.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        if !path.is_file() {
            return Err(crate::error::Error::ModelMissing { path: path.into() });
        }
        let file = crate::formats::gguf::Gguf::load(path)?;
        let cfg = LlamaConfig::from_gguf(&file)?;
        let weights = HostWeights::load(&file, &cfg)?;
        let tokenizer = crate::models::llama::tokenizer::GgufTokenizer::from_gguf(&file)?;
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
