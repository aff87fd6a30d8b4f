//! Text to token ids as sentence-transformers feeds MiniLM: WordPiece from the model folder's
//! tokenizer.json, without padding, cut at [`MAX_SEQ_LEN`].

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

    /// Token ids of each of `texts`, as [`SentenceTokenizer::encode`] gives them, encoded in
    /// parallel: one text after another took 1 to 2.5 ms of a 32 x 128-token batch, a
    /// noticeable share of a forward pass that a GPU runs in about as long.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings =
            self.inner.encode_batch(texts.to_vec(), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encodings.iter().map(|enc| enc.get_ids().to_vec()).collect())
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
