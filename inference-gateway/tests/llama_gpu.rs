//! SmolLM2 on the GPU (lavapipe in CI): the greedy reply equals the CPU reference's tokens,
//! alone or decoded in a batch with another sequence, and seeded sampling is reproducible.

#[path = "common/llama.rs"]
mod llama;

use std::time::Instant;
use tora_inference_gateway::MatmulVariant;
use tora_inference_gateway::kernels::{QMatrix, QuantFormat};

use tora_inference_gateway::formats::gguf::Gguf;
use tora_inference_gateway::models::llama::{
    CpuLlama, Decoder, GpuLlama, HostWeights, Sampler, Sampling, SeqStep, generate,
};

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

/// A step of a shape already run records over the same buffers and bind groups: the prompt's
/// step and the first decode step create theirs (one per dispatch), every later step none, and
/// the reply is still the reference's. Before, every step created all of them again.
#[test]
fn steps_of_a_shape_already_run_create_no_gpu_objects() {
    let mut model = gpu_model();
    let prompt = llama::capital_prompt();
    let greedy =
        |m: &mut GpuLlama| generate(m, &prompt, 6, &mut Sampler::new(Sampling::GREEDY), |_| true).unwrap();
    assert_eq!(greedy(&mut model), llama::GREEDY_CAPITAL_REPLY);
    // Per step: the embedding gather, nine dispatches per layer, then norm, lm head and argmax.
    let per_step = 1 + 9 * model.cfg.layers as u64 + 3;
    assert_eq!(model.bind_groups_created(), 2 * per_step, "the prefill's and one decode step's");
    assert_eq!(greedy(&mut model), llama::GREEDY_CAPITAL_REPLY);
    assert_eq!(model.bind_groups_created(), 2 * per_step, "nothing new for shapes already run");
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

/// Two prompts of different lengths share every forward pass (both prefills in one, then
/// batched decode steps), each in its own KV-cache slot, and each still gets exactly the
/// tokens the CPU reference gives it alone.
#[test]
fn gpu_batch_of_two_prompts_matches_each_alone_on_the_cpu_reference() {
    const STEPS: usize = 4;
    let files = llama::smollm();
    let prompts = [llama::capital_prompt(), llama::colour_prompt()];
    let file = Gguf::load(&llama::smollm_path()).unwrap();
    let mut cpu = CpuLlama::new(files.cfg.clone(), HostWeights::load(&file, &files.cfg).unwrap());
    let expected: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| generate(&mut cpu, p, STEPS, &mut Sampler::new(Sampling::GREEDY), |_| true).unwrap())
        .collect();
    assert_eq!(expected[0], llama::GREEDY_CAPITAL_REPLY[..STEPS]);

    let mut gpu = GpuLlama::with_slots(files.cfg.clone(), &files.weights, None, 2).expect("uploading");
    assert_eq!(gpu.slots(), 2);
    let prefill: Vec<SeqStep<'_>> =
        prompts.iter().enumerate().map(|(slot, ids)| SeqStep { slot, ids }).collect();
    let mut got: Vec<Vec<u32>> = gpu.forward_greedy(&prefill).unwrap().into_iter().map(|t| vec![t]).collect();
    let start = Instant::now();
    for _ in 1..STEPS {
        let last: Vec<u32> = got.iter().map(|g| g[g.len() - 1]).collect();
        let steps: Vec<SeqStep<'_>> = last
            .iter()
            .enumerate()
            .map(|(slot, id)| SeqStep { slot, ids: std::slice::from_ref(id) })
            .collect();
        for (g, t) in got.iter_mut().zip(gpu.forward_greedy(&steps).unwrap()) {
            g.push(t);
        }
    }
    let batched = start.elapsed();
    assert_eq!(got, expected);
    assert_eq!(gpu.passes(), STEPS as u64);
    assert_eq!([gpu.slot_position(0), gpu.slot_position(1)], [prompts[0].len() + 3, prompts[1].len() + 3]);

    // For the report only (never asserted): one sequence alone against two together.
    let start = Instant::now();
    gpu.forward_greedy(&[SeqStep { slot: 0, ids: &got[0][STEPS - 1..] }]).unwrap();
    let alone = start.elapsed();
    eprintln!(
        "decode on {}: 1 sequence {:.2} tokens/s, 2 sequences {:.2} tokens/s",
        gpu.adapter().name,
        1.0 / alone.as_secs_f64(),
        (2 * (STEPS - 1)) as f64 / batched.as_secs_f64()
    );
}

/// A GGUF whose layer matrix is Q8_0 (llama.cpp mixes formats) is refused by the GPU path,
/// whose layer matvecs read Q4_1 only, instead of giving wrong tokens; the CPU reference,
/// which dequantises any format, still loads it.
#[test]
fn a_layer_matrix_the_gpu_cannot_read_is_refused_at_upload() {
    let files = llama::smollm();
    let mut host = HostWeights::load(&Gguf::load(&llama::smollm_path()).unwrap(), &files.cfg).unwrap();
    let down = &host.layers[3].down;
    let blocks = down.rows * down.cols / 32;
    host.layers[3].down =
        QMatrix::new(QuantFormat::Q8_0, down.rows, down.cols, vec![0; blocks * 34]).expect("a Q8_0 matrix");
    let err = GpuLlama::new(files.cfg.clone(), &host, None).err().expect("refused");
    assert!(err.to_string().contains("blk.3.ffn_down is Q8_0"), "{err}");
    CpuLlama::new(files.cfg.clone(), host);
}
