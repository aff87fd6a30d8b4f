//! The text model behind `/v1/completions` and `/v1/chat/completions`: one worker thread
//! owns the model and decodes up to its KV-cache slots' worth of generations together, one
//! forward pass per step for all of them; a bounded number run or wait (429 beyond it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc as queue};
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::error::{Error, Result};
use crate::models::QueueError;
use crate::models::llama::tokenizer::GgufTokenizer;
use crate::models::llama::{
    ChatTemplate, Decoder, GpuLlama, LlamaFiles, MAX_CONTEXT, Sampler, Sampling, Sequence, run_batches,
};

/// The model served, under the name its publisher gives it.
pub const TEXT_MODEL_ID: &str = "SmolLM2-135M-Instruct";

/// Most tokens one request may ask for.
pub const MAX_COMPLETION_TOKENS: usize = 512;

/// The served text model: the worker thread that decodes, its queue and its tokenizer.
pub struct TextModel {
    /// To the worker; closing it (dropping the model) ends the worker once its sequences end.
    jobs: queue::Sender<Sequence>,
    /// Forward passes the worker has run.
    passes: Arc<AtomicU64>,
    /// Generations decoded together.
    batch: usize,
    /// The model's tokenizer, for prompts and replies.
    pub tokenizer: Arc<GgufTokenizer>,
    /// The model's ChatML template, for chat prompts.
    pub chat: ChatTemplate,
    /// Generations running or waiting.
    places: Arc<Semaphore>,
    capacity: usize,
    worker: WorkerThread,
}

/// The worker thread, to wait for at shutdown: it owns the GPU device, which must be gone
/// before the process exits (a Vulkan driver torn down under a live device can crash).
#[derive(Clone)]
pub struct WorkerThread(Arc<Mutex<Option<JoinHandle<()>>>>);

impl WorkerThread {
    /// Blocks until the worker has ended, which it does once every [`TextModel`] is dropped.
    pub fn join(&self) {
        let handle = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// One finished or ongoing generation's output, token by token.
pub enum Generated {
    /// A token the model picked, in order.
    Token(u32),
    /// The generation ended, after its last token or with the error that stopped it.
    Done(Result<()>),
}

/// A place in the text queue, held from before payment to the end of the generation.
pub struct TextSlot {
    _permit: OwnedSemaphorePermit,
}

impl TextModel {
    /// Loads the GGUF at `path` onto the GPU with room for `batch` generations decoded
    /// together; `capacity` generations may run or wait at once.
    pub fn load(path: &std::path::Path, capacity: usize, batch: usize) -> Result<Self> {
        let LlamaFiles { cfg, weights, tokenizer, chat } = LlamaFiles::load(path)?;
        let gpu = GpuLlama::with_slots(cfg, &weights, None, batch)?;
        Ok(Self::new(Box::new(gpu), tokenizer, chat, capacity))
    }

    /// Serves `decoder` (the GPU model, or the CPU reference) with the file's tokenizer, as
    /// many generations together as it has slots, on a worker thread of its own.
    pub fn new(
        mut decoder: Box<dyn Decoder + Send>,
        tokenizer: GgufTokenizer,
        chat: ChatTemplate,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        let batch = decoder.slots();
        let (jobs, queued) = queue::channel();
        let passes = Arc::new(AtomicU64::new(decoder.passes()));
        let seen = passes.clone();
        let worker = std::thread::Builder::new()
            .name("text-batches".into())
            .spawn(move || run_batches(&mut *decoder, &queued, &seen))
            .expect("spawning the text model's worker thread");
        Self {
            jobs,
            passes,
            batch,
            tokenizer: Arc::new(tokenizer),
            chat,
            places: Arc::new(Semaphore::new(capacity)),
            capacity,
            worker: WorkerThread(Arc::new(Mutex::new(Some(worker)))),
        }
    }

    /// The worker thread, to wait for once the model is dropped.
    pub fn worker(&self) -> WorkerThread {
        self.worker.clone()
    }

    /// Most tokens a generation may hold, prompt and completion together.
    pub fn max_context(&self) -> usize {
        MAX_CONTEXT
    }

    /// Generations decoded together.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Forward passes run so far: fewer than the tokens generated when batches form.
    pub fn forward_passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Takes a place, or refuses at once when `capacity` generations are already queued.
    pub fn reserve(&self) -> Result<TextSlot, QueueError> {
        self.places
            .clone()
            .try_acquire_owned()
            .map(|p| TextSlot { _permit: p })
            .map_err(|_| QueueError::Full(self.capacity))
    }

    /// Queues the generation for the worker; tokens arrive on the returned channel, then
    /// `Done`. Dropping the receiver stops the generation after the current token.
    pub fn start(
        &self,
        slot: TextSlot,
        prompt: Vec<u32>,
        max_tokens: usize,
        sampling: Sampling,
    ) -> mpsc::Receiver<Generated> {
        let max_tokens = max_tokens.min(MAX_CONTEXT);
        // Room for every token and `Done`: the worker never waits on one slow reader, and a
        // failed send can only mean the reader is gone.
        let (tx, rx) = mpsc::channel(max_tokens + 1);
        let done = tx.clone();
        let (eos, control) = (self.tokenizer.eos, self.tokenizer.clone());
        let seq = Sequence {
            prompt,
            max_tokens,
            sampler: Sampler::new(sampling),
            // A control token (end of turn, end of text) ends the reply.
            on_token: Box::new(move |token| {
                tx.try_send(Generated::Token(token)).is_ok() && token != eos && !control.is_control(token)
            }),
            on_done: Box::new(move |result| {
                // The place in the queue is held until the generation has ended.
                let _slot = slot;
                let _ = done.try_send(Generated::Done(result));
            }),
        };
        if let Err(queue::SendError(seq)) = self.jobs.send(seq) {
            // Only a panic ends the worker while the model is alive: say so rather than hand
            // back an empty reply.
            (seq.on_done)(Err(Error::Gpu("the text model's worker has stopped".into())));
        }
        rx
    }
}
