//! The text model's worker batches concurrent generations: on the CPU reference (2 slots),
//! two generations started together get exactly the tokens each gets alone, in fewer forward
//! passes than they take one after the other.

#[path = "common/llama.rs"]
mod llama;

use tokio::sync::mpsc;
use tora_inference_gateway::api::{Generated, TextModel};
use tora_inference_gateway::formats::gguf::Gguf;
use tora_inference_gateway::models::llama::{CpuLlama, HostWeights, LlamaFiles, Sampling};

const MAX_TOKENS: usize = 4;

fn model() -> TextModel {
    let LlamaFiles { cfg, tokenizer, chat, .. } = LlamaFiles::load(&llama::smollm_path()).unwrap();
    let weights = HostWeights::load(&Gguf::load(&llama::smollm_path()).unwrap(), &cfg).unwrap();
    TextModel::new(Box::new(CpuLlama::new(cfg, weights).with_slots(2)), tokenizer, chat, 4)
}

fn start(model: &TextModel, prompt: Vec<u32>) -> mpsc::Receiver<Generated> {
    model.start(model.reserve().unwrap(), prompt, MAX_TOKENS, Sampling::GREEDY)
}

/// Every token until `Done`, which must be a success.
fn tokens(mut rx: mpsc::Receiver<Generated>) -> Vec<u32> {
    let mut out = Vec::new();
    loop {
        match rx.blocking_recv().expect("the worker ended the stream without Done") {
            Generated::Token(t) => out.push(t),
            Generated::Done(result) => return result.map(|()| out).unwrap(),
        }
    }
}

#[test]
fn concurrent_generations_share_forward_passes_and_keep_their_tokens() {
    let model = model();
    assert_eq!(model.batch(), 2);
    let prompts = [llama::capital_prompt(), llama::colour_prompt()];

    let alone: Vec<Vec<u32>> = prompts.iter().map(|p| tokens(start(&model, p.clone()))).collect();
    assert_eq!(alone[0], llama::GREEDY_CAPITAL_REPLY[..MAX_TOKENS]);
    // One pass per token alone: the prompt's pass picks the first.
    let sequential = model.forward_passes();
    assert_eq!(sequential, (alone[0].len() + alone[1].len()) as u64);

    let receivers: Vec<_> = prompts.iter().map(|p| start(&model, p.clone())).collect();
    let together: Vec<Vec<u32>> = receivers.into_iter().map(tokens).collect();
    assert_eq!(together, alone);
    let batched = model.forward_passes() - sequential;
    assert!(batched < sequential, "{batched} passes together, {sequential} one after the other");
}
