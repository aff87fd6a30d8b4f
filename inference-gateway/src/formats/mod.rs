//! The model file formats the gateway reads: whole, to load a model, or a file's header
//! alone (`gguf::Header`, `safetensors::Header`), for tools that need its layout but not its data.

pub mod gguf;
pub mod safetensors;
