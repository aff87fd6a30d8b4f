//! Counting what a request will cost before any compute is spent on it: the tokens each text
//! runs through the model, exactly as the embedder will count them.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::models::bert::tokenizer::{MAX_SEQ_LEN, SentenceTokenizer};

/// Why a request cannot be metered.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// A text has more tokens than the model takes, and the request did not ask to truncate.
    #[error(
        "input[{index}] is longer than the model's limit of {max} tokens; send `truncate: true` to cut it"
    )]
    TooLong {
        /// Position of the text in the request's `input`.
        index: usize,
        /// The model's limit, in tokens.
        max: usize,
    },
    /// The tokenizer failed, or its blocking task did.
    #[error(transparent)]
    Tokenizer(#[from] Error),
}

/// The model's tokenizer, shared by request handlers (the worker has its own copy).
#[derive(Clone)]
pub struct Meter {
    tokenizer: Arc<SentenceTokenizer>,
}

impl Meter {
    /// A meter counting with `tokenizer`, the same one the embedder uses.
    pub fn new(tokenizer: SentenceTokenizer) -> Self {
        Self { tokenizer: Arc::new(tokenizer) }
    }

    /// Tokens per text, after truncation when `truncate`; refuses a text over the limit
    /// otherwise. Runs off the async threads: a megabyte of text takes a while to tokenize.
    pub async fn tokens(
        &self,
        texts: Vec<String>,
        truncate: bool,
    ) -> Result<(Vec<String>, Vec<usize>), MeterError> {
        let tokenizer = self.tokenizer.clone();
        tokio::task::spawn_blocking(move || {
            let mut tokens = Vec::with_capacity(texts.len());
            for (index, text) in texts.iter().enumerate() {
                let measured = tokenizer.measure(text)?;
                if measured.truncated && !truncate {
                    return Err(MeterError::TooLong { index, max: MAX_SEQ_LEN });
                }
                tokens.push(measured.tokens);
            }
            Ok((texts, tokens))
        })
        .await
        .map_err(|e| MeterError::Tokenizer(Error::Tokenizer(format!("tokenizer task failed: {e}"))))?
    }
}
