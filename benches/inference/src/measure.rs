//! The timed loops, written once against two small traits so that the wgpu path and the
//! candle baseline run exactly the same schedule: warm-up calls first (not timed: pipeline
//! compilation, first allocations), then a fixed number of timed calls.

use std::time::{Duration, Instant};

use tora_inference_gateway::SentenceTokenizer;
use tora_inference_gateway::models::bert::queue::EmbedModel;
use tora_inference_gateway::models::llama::{Decoder, SeqStep};

use crate::report::{DecodeFigures, EmbedFigures};
use crate::stats::{p50_ms, per_second};

/// Texts in, one unit-length vector per text out.
pub(crate) trait SentenceEmbedder {
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}

// The gateway's one trait over both embedders.
impl<M: EmbedModel> SentenceEmbedder for M {
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(EmbedModel::embed(self, texts)?.vectors)
    }
}

/// A decoder with a KV cache, driven greedily.
pub(crate) trait GreedyDecoder {
    /// Forgets every cached position.
    fn reset(&mut self);
    /// Runs `ids` at the next positions; the most likely token after the last one.
    fn next_greedy(&mut self, ids: &[u32]) -> anyhow::Result<u32>;
}

impl<D: Decoder> GreedyDecoder for D {
    fn reset(&mut self) {
        Decoder::reset(self);
    }

    fn next_greedy(&mut self, ids: &[u32]) -> anyhow::Result<u32> {
        Ok(Decoder::next_greedy(self, ids)?)
    }
}

/// `sequences` copies of `prompt` decoded together (one forward pass per step for all, as the
/// gateway batches concurrent completions): tokens per second over all of them. Each sequence
/// must pick the tokens `alone` (the single-sequence run) picked.
pub(crate) fn batched_greedy_decode(
    backend: &str,
    model: &mut dyn Decoder,
    prompt: &[u32],
    alone: &[u32],
    sequences: usize,
) -> anyhow::Result<DecodeFigures> {
    anyhow::ensure!(
        sequences > 0 && model.slots() >= sequences && alone.len() > 1,
        "{sequences} sequences, {} slots",
        model.slots()
    );
    for slot in 0..sequences {
        model.reset_slot(slot);
    }
    let steps: Vec<SeqStep> = (0..sequences).map(|slot| SeqStep { slot, ids: prompt }).collect();
    let start = Instant::now();
    let mut next = model.forward_greedy(&steps)?;
    let prefill = start.elapsed();
    let mut picked = vec![next.clone()];
    let start = Instant::now();
    while picked.len() < alone.len() {
        let ids: Vec<[u32; 1]> = next.iter().map(|t| [*t]).collect();
        let steps: Vec<SeqStep> = ids.iter().enumerate().map(|(slot, ids)| SeqStep { slot, ids }).collect();
        next = model.forward_greedy(&steps)?;
        picked.push(next.clone());
    }
    let decode = start.elapsed();
    for (step, tokens) in picked.iter().enumerate() {
        anyhow::ensure!(
            tokens.iter().all(|t| *t == alone[step]),
            "step {step}: {tokens:?} vs {}",
            alone[step]
        );
    }
    Ok(DecodeFigures {
        backend: format!("{backend} ×{sequences}"),
        prompt_tokens: prompt.len() * sequences,
        prompt_tokens_per_s: per_second(prompt.len() * sequences, prefill),
        generated: (alone.len() - 1) * sequences,
        tokens_per_s: per_second((alone.len() - 1) * sequences, decode),
    })
}

/// How many calls of each kind a measurement makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub warmup: usize,
    pub iterations: usize,
}

/// Embeds `batch` texts per call, cycling through `sentences`, and times each call; then
/// times `tokenizer` alone on the same texts, since `embed` takes texts and its tokenizing
/// cannot be timed from outside.
pub(crate) fn embeddings(
    backend: &str,
    model: &dyn SentenceEmbedder,
    tokenizer: &SentenceTokenizer,
    sentences: &[&str],
    batch: usize,
    schedule: Schedule,
) -> anyhow::Result<EmbedFigures> {
    anyhow::ensure!(batch > 0 && !sentences.is_empty(), "empty batch");
    let call = |i: usize| -> Vec<&str> {
        (0..batch).map(|j| sentences[(i * batch + j) % sentences.len()]).collect()
    };
    for i in 0..schedule.warmup {
        model.embed(&call(i))?;
    }
    let mut latencies = Vec::with_capacity(schedule.iterations);
    let mut tokenizing = Vec::with_capacity(schedule.iterations);
    let mut tokens = 0;
    for i in 0..schedule.iterations {
        let texts = call(i);
        let start = Instant::now();
        let out = model.embed(&texts)?;
        latencies.push(start.elapsed());
        anyhow::ensure!(out.len() == batch, "{backend}: {} vectors for {batch} texts", out.len());
        // As the gateway's embedders tokenize a batch: all texts at once, in parallel.
        let start = Instant::now();
        let ids = tokenizer.encode_batch(&texts)?;
        tokenizing.push(start.elapsed());
        tokens += ids.iter().map(Vec::len).sum::<usize>();
    }
    let total: Duration = latencies.iter().sum();
    let untokenized = total.saturating_sub(tokenizing.iter().sum());
    let embedded = batch * schedule.iterations;
    Ok(EmbedFigures {
        backend: backend.into(),
        batch,
        tokens_per_text: if embedded > 0 { tokens as f64 / embedded as f64 } else { 0.0 },
        iterations: schedule.iterations,
        embeddings_per_s: per_second(embedded, total),
        p50_ms: p50_ms(&latencies).unwrap_or(0.0),
        tokenize_p50_ms: p50_ms(&tokenizing).unwrap_or(0.0),
        untokenized_embeddings_per_s: per_second(embedded, untokenized),
    })
}

/// What one greedy run produced, with its figures.
pub(crate) struct Decoded {
    pub figures: DecodeFigures,
    pub tokens: Vec<u32>,
}

/// Runs `prompt` (timed as prompt processing, which also yields the first token) and then
/// `tokens - 1` single-token steps (timed as decoding). First come `warmup` untimed rounds of
/// one prompt pass and one single-token step, so that both code paths (many rows and one
/// row: different kernels, masks and buffer sizes) are warm.
pub(crate) fn greedy_decode(
    backend: &str,
    model: &mut dyn GreedyDecoder,
    prompt: &[u32],
    tokens: usize,
    warmup: usize,
) -> anyhow::Result<Decoded> {
    anyhow::ensure!(!prompt.is_empty() && tokens > 0, "empty prompt or no tokens to generate");
    for _ in 0..warmup {
        model.reset();
        let first = model.next_greedy(prompt)?;
        model.next_greedy(&[first])?;
    }
    model.reset();
    let start = Instant::now();
    let mut next = model.next_greedy(prompt)?;
    let prefill = start.elapsed();
    let mut out = vec![next];
    let start = Instant::now();
    while out.len() < tokens {
        next = model.next_greedy(&[next])?;
        out.push(next);
    }
    let decode = start.elapsed();
    Ok(Decoded {
        figures: DecodeFigures {
            backend: backend.into(),
            prompt_tokens: prompt.len(),
            prompt_tokens_per_s: per_second(prompt.len(), prefill),
            generated: tokens - 1,
            tokens_per_s: per_second(tokens - 1, decode),
        },
        tokens: out,
    })
}
