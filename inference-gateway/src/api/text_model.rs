//! The text model behind `/v1/completions` and `/v1/chat/completions`: one GPU session
//! (its KV cache holds one sequence), so generations run one at a time on a blocking thread,
//! with a bounded number waiting (429 beyond it).

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::batcher::QueueError;
use crate::error::{Error, Result};
use crate::models::llama::{
    ChatTemplate, Decoder, GpuLlama, LlamaFiles, MAX_CONTEXT, Sampler, Sampling, generate,
};
use crate::tokenizer::GgufTokenizer;

/// The model served, under the name its publisher gives it.
pub const TEXT_MODEL_ID: &str = "SmolLM2-135M-Instruct";

/// Most tokens one request may ask for.
pub const MAX_COMPLETION_TOKENS: usize = 512;

pub struct TextModel {
    decoder: Arc<Mutex<Box<dyn Decoder + Send>>>,
    pub tokenizer: Arc<GgufTokenizer>,
    pub chat: ChatTemplate,
    /// Generations running or waiting.
    places: Arc<Semaphore>,
    capacity: usize,
}

/// One finished or ongoing generation's output, token by token.
pub enum Generated {
    Token(u32),
    Done(Result<()>),
}

/// A place in the text queue, held from before payment to the end of the generation.
pub struct TextSlot {
    _permit: OwnedSemaphorePermit,
}

impl TextModel {
    /// Loads the GGUF at `path` onto the GPU; `capacity` generations may wait at once.
    pub fn load(path: &std::path::Path, capacity: usize) -> Result<Self> {
        let LlamaFiles { cfg, weights, tokenizer, chat } = LlamaFiles::load(path)?;
        let gpu = GpuLlama::new(cfg, &weights, None)?;
        Ok(Self::new(Box::new(gpu), tokenizer, chat, capacity))
    }

    /// Serves `decoder` (the GPU model, or the CPU reference) with the file's tokenizer.
    pub fn new(
        decoder: Box<dyn Decoder + Send>,
        tokenizer: GgufTokenizer,
        chat: ChatTemplate,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        Self {
            decoder: Arc::new(Mutex::new(decoder)),
            tokenizer: Arc::new(tokenizer),
            chat,
            places: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    pub fn max_context(&self) -> usize {
        MAX_CONTEXT
    }

    /// Takes a place, or refuses at once when `capacity` generations are already queued.
    pub fn reserve(&self) -> Result<TextSlot, QueueError> {
        self.places
            .clone()
            .try_acquire_owned()
            .map(|p| TextSlot { _permit: p })
            .map_err(|_| QueueError::Full(self.capacity))
    }

    /// Starts generating on a blocking thread; tokens arrive on the returned channel, then
    /// `Done`. Dropping the receiver stops the generation after the current token.
    pub fn start(
        &self,
        slot: TextSlot,
        prompt: Vec<u32>,
        max_tokens: usize,
        sampling: Sampling,
    ) -> mpsc::Receiver<Generated> {
        let (tx, rx) = mpsc::channel(64);
        let decoder = self.decoder.clone();
        let eos = self.tokenizer.eos;
        let control = self.tokenizer.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let result = (|| {
                let mut decoder = decoder
                    .lock()
                    .map_err(|_| Error::Gpu("a generation panicked holding the model".into()))?;
                let mut sampler = Sampler::new(sampling);
                generate(&mut **decoder, &prompt, max_tokens, &mut sampler, |token| {
                    // A control token (end of turn, end of text) ends the reply.
                    tx.blocking_send(Generated::Token(token)).is_ok()
                        && token != eos
                        && !control.is_control(token)
                })
                .map(|_| ())
            })();
            let _ = tx.blocking_send(Generated::Done(result));
        });
        rx
    }
}
