//! The error type of the inference path: loading model files, tokenizing, running the GPU.

use std::path::PathBuf;

/// Everything the gateway's inference path can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file `scripts/fetch-models.sh` should have fetched is not there.
    #[error("model file {} is missing: run scripts/fetch-models.sh", path.display())]
    ModelMissing {
        /// Where the file was expected.
        path: PathBuf,
    },

    /// A model file exists but could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file being read.
        path: PathBuf,
        /// What the read failed with.
        source: std::io::Error,
    },

    /// A model file (GGUF, safetensors, config or tokenizer JSON) does not parse.
    #[error("{}: {reason}", path.display())]
    InvalidModelFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor the model needs is missing or has the wrong type or shape.
    #[error("tensor {name}: {reason}")]
    Tensor {
        /// The tensor's name in the model file.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The model file parses but describes something this gateway cannot run, as described.
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),

    /// The tokenizer failed to load, encode or decode, with its message.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// An embedding call with no texts.
    #[error("no texts to embed")]
    EmptyBatch,

    /// More texts in one embedding call than the embedder runs at once.
    #[error("{got} texts in one request, at most {max} allowed")]
    BatchTooLarge {
        /// Texts in the call.
        got: usize,
        /// Most texts allowed in one call ([`crate::MAX_BATCH`]).
        max: usize,
    },

    /// No Vulkan adapter at all, not even lavapipe.
    #[error(
        "no Vulkan adapter found (on machines without a GPU install mesa-vulkan-drivers and libvulkan1 for lavapipe)"
    )]
    NoAdapter,

    /// The device could not be opened, or a submit or readback failed, with wgpu's message.
    #[error("GPU: {0}")]
    Gpu(String),
}

/// A result whose error is, by default, the inference path's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
