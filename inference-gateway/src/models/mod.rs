//! Model architectures, written in terms of the kernels.

pub mod bert;
pub mod llama;
