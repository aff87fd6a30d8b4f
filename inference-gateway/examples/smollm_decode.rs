//! Measures SmolLM2 greedy decoding on the GPU path (not a test): prompt processing and
//! per-token decode time, in tokens per second.
//!
//! `cargo run -p tora-inference-gateway --example smollm_decode [tokens] [vec4|tiled]`

use std::time::Instant;

use tora_inference_gateway::MatmulVariant;
use tora_inference_gateway::models::llama::{ChatMessage, Decoder, GpuLlama, LlamaFiles, SMOLLM2_135M_GGUF};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tokens: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let variant = match args.next().as_deref() {
        Some("vec4") => Some(MatmulVariant::Vec4),
        Some("tiled") => Some(MatmulVariant::Tiled),
        _ => None,
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SMOLLM2_135M_GGUF);
    let files = LlamaFiles::load(&path)?;
    let mut model = GpuLlama::new(files.cfg.clone(), &files.weights, variant)?;
    let user = ChatMessage { role: "user".into(), content: "Write a short story about a robot.".into() };
    let prompt = files.chat.render(&files.tokenizer, &[user])?;

    // One warm-up step compiles the pipelines' first dispatch paths.
    model.next_greedy(&prompt[..1])?;
    model.reset();
    let start = Instant::now();
    let mut next = model.next_greedy(&prompt)?;
    let prefill = start.elapsed();
    let mut out = vec![next];
    let start = Instant::now();
    for _ in 1..tokens {
        next = model.next_greedy(&[next])?;
        out.push(next);
    }
    let decode = start.elapsed();
    println!("adapter: {} ({:?})", model.adapter().name, model.matmul_variant());
    println!(
        "prefill: {} tokens in {:.3} s = {:.1} tokens/s",
        prompt.len(),
        prefill.as_secs_f64(),
        prompt.len() as f64 / prefill.as_secs_f64()
    );
    println!(
        "decode: {} tokens in {:.3} s = {:.2} tokens/s",
        tokens - 1,
        decode.as_secs_f64(),
        (tokens - 1) as f64 / decode.as_secs_f64()
    );
    println!("text: {:?}", files.tokenizer.decode(&out)?);
    Ok(())
}
