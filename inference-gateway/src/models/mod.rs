//! Model architectures, written in terms of the kernels, each with its tokenizer and the
//! worker that owns it.

pub mod bert;
pub mod llama;

/// Why a request queued for a model's worker got no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue already holds its maximum of waiting requests, which it carries.
    #[error("the model's queue is full ({0} requests waiting)")]
    Full(usize),
    /// The worker thread has exited, so nothing will be answered.
    #[error("the model's worker has stopped")]
    Stopped,
    /// The model failed while running the request.
    #[error(transparent)]
    Model(#[from] crate::error::Error),
}
