//! The Llama hyper-parameters, from a GGUF file's `llama.*` metadata.

use crate::error::{Error, Result};
use crate::formats::gguf::Gguf;
use crate::kernels::LLAMA_HEAD_DIM;

/// The hyper-parameters the forward pass depends on, checked against what the kernels support.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Decoder blocks (`llama.block_count`).
    pub layers: usize,
    /// Hidden size: values per token between blocks (`llama.embedding_length`).
    pub hidden: usize,
    /// Width of each block's feed-forward part (`llama.feed_forward_length`).
    pub ffn: usize,
    /// Query heads per block (`llama.attention.head_count`).
    pub heads: usize,
    /// Key/value heads per block, shared by groups of query heads (`llama.attention.head_count_kv`).
    pub kv_heads: usize,
    /// Tokens in the vocabulary: rows of the embedding table and of the logits.
    pub vocab: usize,
    /// The context length the model was trained for, in tokens (`llama.context_length`).
    pub context: usize,
    /// RoPE frequency base (`llama.rope.freq_base`).
    pub rope_base: f32,
    /// Epsilon of every RMSNorm (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
}

impl LlamaConfig {
    /// Reads the `llama.*` metadata of `file` and checks it.
    pub fn from_gguf(file: &Gguf) -> Result<Self> {
        let arch = file.require_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::UnsupportedModel(format!("architecture {arch:?} (only llama)")));
        }
        let n = |key: &str| -> Result<usize> {
            let v = file.require_u64(&format!("llama.{key}"))?;
            usize::try_from(v).map_err(|_| Error::UnsupportedModel(format!("llama.{key} = {v}")))
        };
        let cfg = Self {
            layers: n("block_count")?,
            hidden: n("embedding_length")?,
            ffn: n("feed_forward_length")?,
            heads: n("attention.head_count")?,
            kv_heads: n("attention.head_count_kv")?,
            vocab: match file.metadata("llama.vocab_size") {
                Some(_) => n("vocab_size")?,
                None => file.require_strings("tokenizer.ggml.tokens")?.len(),
            },
            context: n("context_length")?,
            rope_base: file.require_f32("llama.rope.freq_base")?,
            rms_eps: file.require_f32("llama.attention.layer_norm_rms_epsilon")?,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let unsupported = |why: String| Err(Error::UnsupportedModel(why));
        if self.heads == 0 || self.hidden != self.heads * LLAMA_HEAD_DIM {
            return unsupported(format!(
                "hidden {} / {} heads: the kernels need head dim {LLAMA_HEAD_DIM}",
                self.hidden, self.heads
            ));
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return unsupported(format!("{} query heads over {} KV heads", self.heads, self.kv_heads));
        }
        // Quantised rows are whole 32-weight blocks; the tiled matvec stages up to 2048 inputs.
        if !self.hidden.is_multiple_of(32) || !self.ffn.is_multiple_of(32) || self.ffn > 2048 {
            return unsupported(format!(
                "hidden {} / ffn {} are not multiples of 32 up to 2048",
                self.hidden, self.ffn
            ));
        }
        if self.layers == 0 || self.vocab == 0 || self.context == 0 {
            return unsupported("no layers, vocabulary or context".into());
        }
        Ok(())
    }

    /// Width of the keys (and of the values) of one token: kv_heads * 64.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * LLAMA_HEAD_DIM
    }

    /// Width of the fused Q|K|V projection.
    pub fn qkv_dim(&self) -> usize {
        self.hidden + 2 * self.kv_dim()
    }
}
