//! The TORA inference gateway: sentence embeddings (all-MiniLM-L6-v2) and text generation
//! (SmolLM2-135M-Instruct from GGUF) computed with wgpu compute shaders, on a real GPU or on
//! lavapipe, with a plain-Rust reference of every kernel, served over an OpenAI-shaped HTTP
//! API and paid per token with cumulative escrow vouchers.
//!
//! `server::start` runs the whole service; `api` (HTTP only: parse, call, map), `models` (each
//! model with its tokenizer and worker), `formats` (GGUF, safetensors), `kernels`, `metering`
//! and `payment` are its parts, usable on their own. Between the API and the text model and
//! payment sits `generation` (a paid generation, from hold to exact charge), the crate's own.

pub mod api;
pub mod error;
pub mod formats;
mod generation;
pub mod gpu;
pub mod kernels;
pub mod metering;
pub mod model_dir;
pub mod models;
pub mod payment;
pub mod server;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use kernels::MatmulVariant;
pub use models::bert::embedder::{CpuEmbedder, Embedder, Embeddings, MAX_BATCH};
pub use models::bert::tokenizer::{MAX_SEQ_LEN, Measured, SentenceTokenizer};
pub use server::{GatewaySettings, RunningGateway, ServeError, start};
// The wgpu this crate is built against, for callers that drive the kernels directly.
pub use wgpu;
