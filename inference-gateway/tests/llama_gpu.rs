//! SmolLM2 on the GPU (lavapipe in CI): the greedy reply equals the CPU reference's tokens,
//! and seeded sampling is reproducible.

#[path = "common/llama.rs"]
mod llama;

use tora_inference_gateway::MatmulVariant;
use tora_inference_gateway::models::llama::{GpuLlama, Sampler, Sampling, generate};

fn gpu_model_with(variant: Option<MatmulVariant>) -> GpuLlama {
    let files = llama::smollm();
    GpuLlama::new(files.cfg.clone(), &files.weights, variant).expect("uploading SmolLM2")
}

fn gpu_model() -> GpuLlama {
    gpu_model_with(None)
}

#[test]
fn gpu_greedy_reply_matches_the_cpu_reference() {
    let mut model = gpu_model();
    let prompt = llama::capital_prompt();
    let start = std::time::Instant::now();
    let tokens = generate(&mut model, &prompt, 6, &mut Sampler::new(Sampling::GREEDY), |_| true).unwrap();
    println!(
        "{} prompt + 6 tokens in {:?} on {} ({:?})",
        prompt.len(),
        start.elapsed(),
        model.adapter().name,
        model.matmul_variant()
    );
    assert_eq!(tokens, llama::GREEDY_CAPITAL_REPLY);
}

#[test]
fn seeded_sampling_repeats_and_zero_temperature_is_greedy() {
    let mut model = gpu_model();
    let prompt = llama::capital_prompt();
    let mut run = |s: Sampling| generate(&mut model, &prompt, 4, &mut Sampler::new(s), |_| true).unwrap();
    let hot = Sampling { temperature: 1.0, top_p: 0.9, seed: 7 };
    let first = run(hot);
    assert_eq!(run(hot), first);
    assert_eq!(run(Sampling { temperature: 0.0, top_p: 0.9, seed: 7 }), llama::GREEDY_CAPITAL_REPLY[..4]);
}

// The shared-memory matvec real GPUs get, forced here so lavapipe runs it end to end too.
#[test]
fn gpu_greedy_reply_matches_the_cpu_reference_with_the_tiled_matvec() {
    let mut model = gpu_model_with(Some(MatmulVariant::Tiled));
    assert_eq!(model.matmul_variant(), MatmulVariant::Tiled);
    let prompt = llama::capital_prompt();
    let tokens = generate(&mut model, &prompt, 6, &mut Sampler::new(Sampling::GREEDY), |_| true).unwrap();
    assert_eq!(tokens, llama::GREEDY_CAPITAL_REPLY);
}
