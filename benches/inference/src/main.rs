//! The inference gateway's benchmark (not a test): MiniLM embeddings per second and p50
//! latency at batch 1 and 32, and SmolLM2 greedy tokens per second, on the wgpu path and,
//! with `--features candle`, on candle's CPU kernels over the same weights.
//!
//! `cargo run --release -p tora-inference-bench [--features candle] -- [--json FILE]`

// Only the candle baseline is checked against; its tests run without the feature too.
#[cfg_attr(not(feature = "candle"), allow(dead_code))]
mod agreement;
mod args;
#[cfg(feature = "candle")]
mod candle_baseline;
mod measure;
mod report;
mod sentences;
mod stats;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use tora_inference_gateway::models::llama::{
    ChatMessage, Decoder, GpuLlama, LlamaFiles, MAX_CONTEXT, SMOLLM2_135M_GGUF,
};
use tora_inference_gateway::{Embedder, MatmulVariant, SentenceTokenizer};

use crate::args::Args;
use crate::measure::{Decoded, Schedule, SentenceEmbedder};
use crate::report::Report;
use crate::sentences::SENTENCES;

/// The prompt every decoder continues, in SmolLM2's chat template.
const PROMPT: &str = "Write a short story about a robot.";

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            print!("{}", report.to_text());
            if report.agreement.iter().all(|a| a.passed) { ExitCode::SUCCESS } else { ExitCode::from(2) }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models = args.models.clone().unwrap_or_else(|| root.join(".cache/models"));
    let minilm = models.join("all-minilm-l6-v2");
    let gguf = models.join(Path::new(SMOLLM2_135M_GGUF).strip_prefix(".cache/models")?);
    let variant = args.matmul.map(MatmulVariant::from);

    let mut report = Report { load_average: load_average(), ..Report::default() };
    let tokenizer = SentenceTokenizer::load(&minilm)?;
    let lens =
        SENTENCES.iter().map(|s| tokenizer.encode(s).map(|ids| ids.len())).collect::<Result<Vec<_>, _>>()?;
    report.tokens_per_text = lens.iter().sum::<usize>() as f64 / lens.len() as f64;

    let embedder = Embedder::load_with(&minilm, variant)?;
    report.adapter = format!("{} ({:?})", embedder.adapter().name, embedder.matmul_variant());
    eprintln!("wgpu on {}: embeddings", report.adapter);
    let ours = measure_embeddings("wgpu", &embedder, args, &mut report)?;
    drop(embedder);

    let files = LlamaFiles::load(&gguf)?;
    let user = ChatMessage { role: "user".into(), content: PROMPT.into() };
    let prompt = files.chat.render(&files.tokenizer, &[user])?;
    anyhow::ensure!(prompt.len() + args.tokens <= MAX_CONTEXT, "prompt and tokens exceed {MAX_CONTEXT}");
    eprintln!("wgpu: decode");
    let mut gpu = GpuLlama::new(files.cfg.clone(), &files.weights, variant)?;
    let decoded = measure::greedy_decode("wgpu", &mut gpu, &prompt, args.tokens, args.warmup)?;
    drop(gpu);
    report.completion = files.tokenizer.decode(&decoded.tokens)?;
    report.decode.push(decoded.figures.clone());
    if args.sequences > 1 {
        eprintln!("wgpu: decode, {} sequences together", args.sequences);
        let mut gpu = GpuLlama::with_slots(files.cfg.clone(), &files.weights, variant, args.sequences)?;
        // The adapter's largest buffer binding may hold fewer KV caches than asked for.
        let sequences = Decoder::slots(&gpu).min(args.sequences);
        if sequences < args.sequences {
            eprintln!("the adapter holds {sequences} KV caches: decoding {sequences} together");
        }
        let batched = measure::batched_greedy_decode("wgpu", &mut gpu, &prompt, &decoded.tokens, sequences)?;
        report.decode.push(batched);
    }

    baseline(args, &minilm, &gguf, &prompt, &ours, &decoded, &mut report)?;

    report.load_average_end = load_average();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(report)
}

/// Batch 1 and batch 32 figures for `model`; returns its vectors for the whole sentence set
/// (one untimed call), which the baseline is compared with.
fn measure_embeddings(
    backend: &str,
    model: &dyn SentenceEmbedder,
    args: &Args,
    report: &mut Report,
) -> anyhow::Result<Vec<Vec<f32>>> {
    for (batch, iterations) in [(1, args.batch1_calls), (SENTENCES.len(), args.batch32_calls)] {
        let schedule = Schedule { warmup: args.warmup, iterations };
        report.embeddings.push(measure::embeddings(backend, model, &SENTENCES, batch, schedule)?);
    }
    model.embed(&SENTENCES)
}

#[cfg(feature = "candle")]
fn baseline(
    args: &Args,
    minilm: &Path,
    gguf: &Path,
    prompt: &[u32],
    ours: &[Vec<f32>],
    decoded: &Decoded,
    report: &mut Report,
) -> anyhow::Result<()> {
    use crate::candle_baseline::{CandleBert, CandleLlama};

    eprintln!("candle: embeddings");
    let bert = CandleBert::load(minilm)?;
    let theirs = measure_embeddings("candle", &bert, args, report)?;
    report.agreement.push(agreement::embeddings(ours, &theirs));
    drop(bert);

    eprintln!("candle: decode");
    let mut llama = CandleLlama::load(gguf)?;
    let theirs = measure::greedy_decode("candle", &mut llama, prompt, args.tokens, args.warmup)?;
    report.agreement.push(agreement::greedy_tokens(&decoded.tokens, &theirs.tokens, args.check_tokens));
    report.decode.push(theirs.figures);
    Ok(())
}

#[cfg(not(feature = "candle"))]
fn baseline(
    _: &Args,
    _: &Path,
    _: &Path,
    _: &[u32],
    _: &[Vec<f32>],
    _: &Decoded,
    _: &mut Report,
) -> anyhow::Result<()> {
    eprintln!("candle baseline not built: add --features candle");
    Ok(())
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
