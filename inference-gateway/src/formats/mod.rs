//! The model file formats the gateway reads.

pub mod gguf;
pub mod safetensors;
