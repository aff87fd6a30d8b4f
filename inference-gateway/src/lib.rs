//! Inference for the TORA gateway: sentence embeddings (all-MiniLM-L6-v2) computed with wgpu
//! compute shaders, on a real GPU or on lavapipe, with a plain-Rust reference of every kernel.
//! Each call reports the tokens it processed, which is what the gateway meters and charges
//! through escrow vouchers (the HTTP API and payments build on this crate later).

pub mod embedder;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod model_dir;
pub mod models;
pub mod safetensors;
pub mod tokenizer;

pub use embedder::{CpuEmbedder, Embedder, Embeddings, MAX_BATCH};
pub use error::{Error, Result};
pub use gpu::Gpu;
pub use kernels::MatmulVariant;
pub use tokenizer::{MAX_SEQ_LEN, SentenceTokenizer};
// The wgpu this crate is built against, for callers that drive the kernels directly.
pub use wgpu;
