//! The inference gateway's benchmark (not a test): MiniLM embeddings per second and p50
//! latency at batch 1 and 32 (short texts) and 32 × 128 tokens, and SmolLM2 greedy tokens per
//! second, on the wgpu path and, with `--features candle`, on candle's CPU kernels over the
//! same weights. With `--random-weights`, on noise of the models' exact layout instead.
//!
//! `cargo run --release -p tora-inference-bench [--features candle] -- [--json FILE]`

mod agreement;
mod args;
#[cfg(feature = "candle")]
mod candle_baseline;
mod measure;
mod random_weights;
mod report;
mod sentences;
mod skeleton;
mod stats;
mod tensor_layout;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tora_inference_gateway::models::llama::{
    ChatMessage, CpuLlama, Decoder, GpuLlama, LlamaFiles, MAX_CONTEXT, SMOLLM2_135M_GGUF,
};
use tora_inference_gateway::{CpuEmbedder, Embedder, MatmulVariant, SentenceTokenizer, wgpu};

use crate::args::{Args, Command};
use crate::measure::{Decoded, Schedule, SentenceEmbedder};
use crate::report::{Report, Weights};
use crate::sentences::{LONG_TEXT_TOKENS, SENTENCES};

/// The prompt every decoder continues, in SmolLM2's chat template.
const PROMPT: &str = "Write a short story about a robot.";

fn main() -> ExitCode {
    let args = Args::parse();
    let done = match &args.command {
        Some(Command::Skeleton { out }) => write_skeleton(&models_dir(&args), out),
        Some(Command::Adapters) => list_adapters(),
        None => run(&args).map(|report| {
            print!("{}", report.to_text());
            report.agreement.iter().all(|a| a.passed)
        }),
    };
    match done {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--models`, or the repository's `.cache/models` (scripts/fetch-models.sh).
fn models_dir(args: &Args) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    args.models.clone().unwrap_or_else(|| root.join(".cache/models"))
}

fn write_skeleton(models: &Path, out: &Path) -> anyhow::Result<bool> {
    let bytes = skeleton::export(models, out)?;
    println!("skeleton of {} in {}: {:.1} MB", models.display(), out.display(), bytes as f64 / 1e6);
    Ok(true)
}

/// Every Vulkan adapter, as the gateway's `Gpu::new` enumerates them before picking one.
fn list_adapters() -> anyhow::Result<bool> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
    for a in &adapters {
        let i = a.get_info();
        println!(
            "{:?}: {} (driver {} {}, vendor {:#06x})",
            i.device_type, i.name, i.driver, i.driver_info, i.vendor
        );
    }
    anyhow::ensure!(
        !adapters.is_empty(),
        "no Vulkan adapter: is a Vulkan loader (libvulkan1) and an ICD installed?"
    );
    Ok(true)
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let (models, weights) = match &args.random_weights {
        None => (models_dir(args), Weights::Trained),
        Some(skeleton) => {
            let models = args.models.clone().unwrap_or_else(random_weights::default_dir);
            eprintln!("RANDOM WEIGHTS: rebuilding {} into {}", skeleton.display(), models.display());
            let start = Instant::now();
            let rebuilt = random_weights::rebuild(skeleton, &models, args.seed)?;
            eprintln!(
                "{} weights files, {:.1} MB, in {:.1} s",
                rebuilt.weights_files,
                rebuilt.bytes as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            let (skeleton, shown) = (skeleton.display().to_string(), models.display().to_string());
            (models, Weights::Random { seed: args.seed, skeleton, models: shown })
        }
    };
    let random = matches!(weights, Weights::Random { .. });
    let minilm = models.join(&skeleton::model_dirs()[0]);
    let gguf = models.join(Path::new(SMOLLM2_135M_GGUF).strip_prefix(".cache/models")?);
    let variant = args.matmul.map(MatmulVariant::from);

    let mut report = Report { weights, load_average: load_average(), ..Report::default() };
    let tokenizer = SentenceTokenizer::load(&minilm)?;
    let long_texts = sentences::texts_of_exactly(&tokenizer, LONG_TEXT_TOKENS, SENTENCES.len())?;
    let long: Vec<&str> = long_texts.iter().map(String::as_str).collect();
    let texts = Texts { tokenizer: &tokenizer, long: &long };

    let embedder = Embedder::load_with(&minilm, variant)?;
    report.adapter = format!("{} ({:?})", embedder.adapter().name, embedder.matmul_variant());
    eprintln!("wgpu on {}: embeddings", report.adapter);
    let ours = measure_embeddings("wgpu", &embedder, &texts, args, &mut report)?;
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
    // The CPU reference takes the loaded weights rather than reading the file again; otherwise
    // they go before the baseline loads its own.
    if random {
        cpu_reference(args, &minilm, files, &prompt, &ours, &decoded, &mut report)?;
    } else {
        drop(files);
    }
    let on = if random { " on the same random weights" } else { "" };
    baseline(args, on, &minilm, &gguf, &texts, &prompt, &ours, &decoded, &mut report)?;

    report.load_average_end = load_average();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(report)
}

/// The inputs every embedder is timed on besides [`SENTENCES`].
struct Texts<'a> {
    tokenizer: &'a SentenceTokenizer,
    /// 32 texts of exactly [`LONG_TEXT_TOKENS`] tokens.
    long: &'a [&'a str],
}

/// On random weights no trained baseline exists to agree with: the gateway's CPU reference
/// (the yardstick its own tests hold the shaders to) runs the same random files instead.
/// Untimed: it is a check, not a baseline anyone would serve with.
fn cpu_reference(
    args: &Args,
    minilm: &Path,
    files: LlamaFiles,
    prompt: &[u32],
    ours: &[Vec<f32>],
    decoded: &Decoded,
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = "gateway CPU reference on the same random weights";
    eprintln!("{name}: embeddings");
    let theirs = SentenceEmbedder::embed(&CpuEmbedder::load(minilm)?, &SENTENCES)?;
    report.agreement.push(agreement::embeddings(name, ours, &theirs));
    eprintln!("{name}: first {} greedy tokens", args.check_tokens);
    let mut cpu = CpuLlama::new(files.cfg, files.weights);
    let theirs = measure::greedy_decode(name, &mut cpu, prompt, args.check_tokens.max(1), 0)?;
    report.agreement.push(agreement::greedy_tokens(name, &decoded.tokens, &theirs.tokens, args.check_tokens));
    Ok(())
}

/// Batch 1 and batch 32 figures for `model` on the short sentences, and batch 32 on the long
/// texts; returns its vectors for the whole sentence set (one untimed call), which the
/// baseline is compared with.
fn measure_embeddings(
    backend: &str,
    model: &dyn SentenceEmbedder,
    texts: &Texts<'_>,
    args: &Args,
    report: &mut Report,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let cases: [(&[&str], usize, usize); 3] = [
        (&SENTENCES, 1, args.batch1_calls),
        (&SENTENCES, SENTENCES.len(), args.batch32_calls),
        (texts.long, texts.long.len(), args.long_calls),
    ];
    for (inputs, batch, iterations) in cases {
        if iterations == 0 {
            continue;
        }
        let schedule = Schedule { warmup: args.warmup, iterations };
        report.embeddings.push(measure::embeddings(
            backend,
            model,
            texts.tokenizer,
            inputs,
            batch,
            schedule,
        )?);
    }
    model.embed(&SENTENCES)
}

/// candle on the CPU over the same files; `on` says which weights those are, for the checks.
#[cfg(feature = "candle")]
#[expect(clippy::too_many_arguments, reason = "one call site; a struct would only rename them")]
fn baseline(
    args: &Args,
    on: &str,
    minilm: &Path,
    gguf: &Path,
    texts: &Texts<'_>,
    prompt: &[u32],
    ours: &[Vec<f32>],
    decoded: &Decoded,
    report: &mut Report,
) -> anyhow::Result<()> {
    use crate::candle_baseline::{CandleBert, CandleLlama};

    let name = format!("candle{on}");
    eprintln!("candle: embeddings");
    let bert = CandleBert::load(minilm)?;
    let theirs = measure_embeddings("candle", &bert, texts, args, report)?;
    report.agreement.push(agreement::embeddings(&name, ours, &theirs));
    drop(bert);

    eprintln!("candle: decode");
    let mut llama = CandleLlama::load(gguf)?;
    let theirs = measure::greedy_decode("candle", &mut llama, prompt, args.tokens, args.warmup)?;
    report.agreement.push(agreement::greedy_tokens(
        &name,
        &decoded.tokens,
        &theirs.tokens,
        args.check_tokens,
    ));
    report.decode.push(theirs.figures);
    Ok(())
}

#[cfg(not(feature = "candle"))]
#[expect(clippy::too_many_arguments, reason = "the candle build's signature")]
fn baseline(
    _: &Args,
    _: &str,
    _: &Path,
    _: &Path,
    _: &Texts<'_>,
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
