//! Text to token ids as llama.cpp tokenizes for a GGUF model: byte-level BPE from the file's
//! `tokenizer.ggml.*` metadata.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// ggml's token type for control tokens (LLAMA_TOKEN_TYPE_CONTROL): `<|im_start|>` and kin.
const TOKEN_TYPE_CONTROL: i64 = 3;

/// A GPT-2 byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, with
/// the "smollm" pre-tokenizer (every digit on its own, then the GPT-2 regex). No BOS is added
/// (`tokenizer.ggml.add_bos_token` is false for SmolLM2).
///
/// Control tokens are never parsed out of text: [`GgufTokenizer::encode`] treats
/// `"<|im_start|>"` in user input as plain characters, and the chat template inserts the
/// control ids itself. Tokenising the segments between control tokens one by one is what
/// llama.cpp does with special-token parsing on, so prompts tokenise identically.
pub struct GgufTokenizer {
    inner: Tokenizer,
    control: Vec<bool>,
    /// `tokenizer.ggml.eos_token_id`: `<|im_end|>` for SmolLM2-Instruct.
    pub eos: u32,
}

impl GgufTokenizer {
    /// Builds the tokenizer from `file`'s vocabulary, merges and token types; only `gpt2` BPE.
    pub fn from_gguf(file: &crate::formats::gguf::Gguf) -> Result<Self> {
        use tokenizers::models::bpe::BPE;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::pre_tokenizers::digits::Digits;
        use tokenizers::pre_tokenizers::sequence::Sequence;

        let model = file.require_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::UnsupportedModel(format!("tokenizer model {model:?} (only gpt2 BPE)")));
        }
        let tokens = file.require_strings("tokenizer.ggml.tokens")?;
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        if vocab.len() != tokens.len() {
            return Err(Error::Tokenizer("tokenizer.ggml.tokens holds duplicates".into()));
        }
        let merges = file
            .require_strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::Tokenizer(format!("merge {m:?} is not two tokens")))
            })
            .collect::<Result<Vec<_>>>()?;
        let control = match file.metadata("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(types) if types.len() == tokens.len() => types
                .iter()
                .map(|t| matches!(t, crate::formats::gguf::Value::I32(v) if i64::from(*v) == TOKEN_TYPE_CONTROL))
                .collect(),
            _ => return Err(Error::Tokenizer("tokenizer.ggml.token_type does not match the tokens".into())),
        };
        let eos = file.require_u64("tokenizer.ggml.eos_token_id")?;
        let eos = u32::try_from(eos)
            .ok()
            .filter(|&e| (e as usize) < tokens.len())
            .ok_or_else(|| Error::Tokenizer(format!("eos token id {eos} outside the vocabulary")))?;

        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Tokenizer(format!("building the BPE model: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        // SmolLM2's tokenizer.json: Digits(individual) then ByteLevel without a prefix space.
        inner.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        inner.with_decoder(Some(ByteLevel::default()));
        Ok(Self { inner, control, eos })
    }

    /// Token ids of plain text (no control tokens parsed, none added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, control tokens left out. A sequence cut inside a multi-byte character
    /// ends in U+FFFD: streaming callers hold such a tail back until the next token.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let kept: Vec<u32> = ids.iter().copied().filter(|&id| !self.is_control(id)).collect();
        self.inner.decode(&kept, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The id of a token by its text (e.g. `"<|im_start|>"`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether `id` is a control token (`<|im_start|>`, `<|im_end|>`, ...), which ends a reply.
    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.control.len()
    }
}
