//! Text to token ids: as sentence-transformers feeds MiniLM ([`SentenceTokenizer`]), and as
//! llama.cpp tokenizes for a GGUF model ([`GgufTokenizer`]).

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};
use crate::model_dir::model_file;

/// sentence_bert_config.json's max_seq_length for all-MiniLM-L6-v2. Longer texts are cut to
/// this many tokens ([CLS] and [SEP] included), as sentence-transformers does.
pub const MAX_SEQ_LEN: usize = 256;

/// One text's length as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    /// Tokens after truncation, [CLS] and [SEP] included.
    pub tokens: usize,
    /// The text had more than [`MAX_SEQ_LEN`] tokens and was cut.
    pub truncated: bool,
}

/// The model's WordPiece tokenizer with the settings sentence-transformers uses.
pub struct SentenceTokenizer {
    inner: Tokenizer,
}

impl SentenceTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = model_file(dir, "tokenizer.json")?;
        let mut inner =
            Tokenizer::from_file(&path).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        // The shipped tokenizer.json pads every input to 128 and truncates at 128. Padding
        // would put [PAD] rows into the mean pooling; the batch is padded (and masked) later.
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams { max_length: MAX_SEQ_LEN, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Token ids of `text`, with [CLS] ... [SEP], at most [`MAX_SEQ_LEN`] of them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// How many tokens `text` runs through the model ([CLS] and [SEP] included), and whether
    /// it had to be cut to [`MAX_SEQ_LEN`] for that: what the gateway meters and refuses by.
    pub fn measure(&self, text: &str) -> Result<Measured> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        // With truncation on, whatever did not fit comes back as overflowing encodings.
        Ok(Measured { tokens: enc.len(), truncated: !enc.get_overflowing().is_empty() })
    }

    /// The number of entries in the vocabulary (ids are below it).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

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
    pub fn from_gguf(file: &crate::gguf::Gguf) -> Result<Self> {
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
                .map(|t| matches!(t, crate::gguf::Value::I32(v) if i64::from(*v) == TOKEN_TYPE_CONTROL))
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

    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }

    pub fn vocab_size(&self) -> usize {
        self.control.len()
    }
}
