#![allow(dead_code)] // each test binary uses a different subset
//! Loading SmolLM2 for the Llama tests, once per test binary (parsing the 98 MB GGUF and
//! building the tokenizer takes a while unoptimised).

use std::path::PathBuf;
use std::sync::OnceLock;

use tora_inference_gateway::models::llama::{ChatMessage, LlamaFiles, SMOLLM2_135M_GGUF};

/// Fails the test, never skips it, when the model is not there.
pub(crate) fn smollm_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(SMOLLM2_135M_GGUF);
    assert!(path.is_file(), "SmolLM2 not found at {}: run scripts/fetch-models.sh", path.display());
    path
}

pub(crate) fn smollm() -> &'static LlamaFiles {
    static FILES: OnceLock<LlamaFiles> = OnceLock::new();
    FILES.get_or_init(|| LlamaFiles::load(&smollm_path()).expect("loading SmolLM2"))
}

/// A ChatML prompt (default system turn included) whose greedy reply both forward passes
/// must produce.
pub(crate) fn capital_prompt() -> Vec<u32> {
    chat_prompt("What is the capital of France?")
}

/// `question` as the user's turn of a ChatML prompt (default system turn included).
pub(crate) fn chat_prompt(question: &str) -> Vec<u32> {
    let files = smollm();
    let user = ChatMessage { role: "user".into(), content: question.into() };
    files.chat.render(&files.tokenizer, &[user]).expect("rendering the prompt")
}

/// A second question, of another length than [`capital_prompt`], for the batching tests.
pub(crate) fn colour_prompt() -> Vec<u32> {
    chat_prompt("Name a colour of the rainbow, and tell me why you like it.")
}

/// What the CPU reference answers to [`capital_prompt`], greedily, in 6 tokens:
/// "The capital of France is Paris".
pub(crate) const GREEDY_CAPITAL_REPLY: [u32; 6] = [504, 3575, 282, 4649, 314, 7042];
