use std::path::PathBuf;

/// Everything the gateway's inference path can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model file {} is missing: run scripts/fetch-models.sh", path.display())]
    ModelMissing { path: PathBuf },

    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: {reason}", path.display())]
    InvalidModelFile { path: PathBuf, reason: String },

    #[error("tensor {name}: {reason}")]
    Tensor { name: String, reason: String },

    #[error("unsupported model: {0}")]
    UnsupportedModel(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("no texts to embed")]
    EmptyBatch,

    #[error("{got} texts in one request, at most {max} allowed")]
    BatchTooLarge { got: usize, max: usize },

    #[error(
        "no Vulkan adapter found (on machines without a GPU install mesa-vulkan-drivers and libvulkan1 for lavapipe)"
    )]
    NoAdapter,

    #[error("GPU: {0}")]
    Gpu(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
