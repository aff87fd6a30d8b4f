//! The TORA inference gateway: sentence embeddings (all-MiniLM-L6-v2) and text generation
//! (SmolLM2-135M-Instruct from GGUF) computed with wgpu compute shaders, on a real GPU or on
//! lavapipe, with a plain-Rust reference of every kernel, served over an OpenAI-shaped HTTP
//! API and paid per token with cumulative escrow vouchers.
//!
//! `server::start` runs the whole service; `api`, `batcher`, `metering` and `payment` are its
//! parts, usable on their own.

pub mod api;
pub mod batcher;
pub mod embedder;
pub mod error;
pub mod gguf;
pub mod gpu;
pub mod kernels;
pub mod metering;
pub mod model_dir;
pub mod models;
pub mod payment;
pub mod safetensors;
pub mod server;
pub mod tokenizer;

pub use embedder::{CpuEmbedder, Embedder, Embeddings, MAX_BATCH};
pub use error::{Error, Result};
pub use gpu::Gpu;
pub use kernels::MatmulVariant;
pub use server::{GatewaySettings, RunningGateway, ServeError, start};
pub use tokenizer::{MAX_SEQ_LEN, Measured, SentenceTokenizer};
// The wgpu this crate is built against, for callers that drive the kernels directly.
pub use wgpu;
