//! The bench's results: one struct, written as text for people and as JSON for scripts.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct EmbedFigures {
    pub backend: String,
    pub batch: usize,
    /// Mean MiniLM tokens per input text ([CLS] and [SEP] included).
    pub tokens_per_text: f64,
    /// Timed calls (warm-up excluded).
    pub iterations: usize,
    /// End to end through the embedder's `embed(texts)`: tokenization included.
    pub embeddings_per_s: f64,
    /// Median latency of one call of `batch` texts, tokenization included.
    pub p50_ms: f64,
    /// Median time to tokenize the same `batch` texts alone, with the same `SentenceTokenizer`'s
    /// `encode_batch`, as the embedders do (the public API embeds texts, not token ids, so the
    /// forward pass cannot be timed apart).
    pub tokenize_p50_ms: f64,
    /// `embeddings_per_s` with the tokenizing time taken out of the calls' total: an estimate
    /// of the forward pass and readback alone.
    pub untokenized_embeddings_per_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct DecodeFigures {
    pub backend: String,
    pub prompt_tokens: usize,
    pub prompt_tokens_per_s: f64,
    /// Tokens from single-token decode steps (the first token comes with the prompt pass).
    pub generated: usize,
    pub tokens_per_s: f64,
}

/// The models' weights: the trained files, or noise of their exact layout.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Weights {
    #[default]
    Trained,
    /// Rebuilt from a skeleton by `random_weights`, drawn from `seed`.
    Random { seed: u64, skeleton: String, models: String },
}

/// Whether the baseline computed the same thing as the wgpu path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Agreement {
    pub what: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Report {
    /// Where the weights came from; when random, every figure measures throughput only.
    pub weights: Weights,
    /// The wgpu adapter and the matmul kernel it runs.
    pub adapter: String,
    /// /proc/loadavg's 1, 5 and 15 minute averages when the run started and when it ended:
    /// the bench itself keeps both cores busy, so much more than 2 at the end means it shared them.
    pub load_average: String,
    pub load_average_end: String,
    pub embeddings: Vec<EmbedFigures>,
    pub decode: Vec<DecodeFigures>,
    /// The wgpu path's greedy completion, to see that it is text.
    pub completion: String,
    pub agreement: Vec<Agreement>,
}

impl Report {
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        if let Weights::Random { seed, skeleton, models } = &self.weights {
            let _ = writeln!(
                s,
                "!!! RANDOM WEIGHTS (seed {seed}, rebuilt from the skeleton {skeleton} into {models}): \
                 throughput only, the completion is noise, and every check compares wgpu with a CPU \
                 path on the same random weights, not with the trained model !!!"
            );
        }
        let _ = writeln!(s, "adapter: {}", self.adapter);
        let _ = writeln!(s, "load average: {} at start, {} at end", self.load_average, self.load_average_end);
        s.push_str(
            "MiniLM embeddings (embed(texts) end to end, tokenization included; \"tokenize\": the same \
             SentenceTokenizer's encode_batch on the same texts alone; \"without\": the rate once that time is taken out):\n",
        );
        for e in &self.embeddings {
            let _ = writeln!(
                s,
                "  {:<6} batch {:>2} x {:>5.1} tokens: {:>8.2} embeddings/s, p50 {:>9.2} ms ({} calls); \
                 tokenize p50 {:.2} ms; without: {:.2} embeddings/s",
                e.backend,
                e.batch,
                e.tokens_per_text,
                e.embeddings_per_s,
                e.p50_ms,
                e.iterations,
                e.tokenize_p50_ms,
                e.untokenized_embeddings_per_s
            );
        }
        s.push_str("SmolLM2-135M Q4_1 greedy decode:\n");
        for d in &self.decode {
            let _ = writeln!(
                s,
                "  {:<6} prompt {} tokens at {:.1} tokens/s, decode {} tokens at {:.2} tokens/s",
                d.backend, d.prompt_tokens, d.prompt_tokens_per_s, d.generated, d.tokens_per_s
            );
        }
        let _ = writeln!(s, "completion: {:?}", self.completion);
        for a in &self.agreement {
            let verdict = if a.passed { "ok" } else { "DIFFERS" };
            let _ = writeln!(s, "check {}: {verdict} ({})", a.what, a.detail);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            weights: Weights::Trained,
            adapter: "llvmpipe (LLVM 19.1.7, 256 bits) (Vec4)".into(),
            load_average: "0.52 0.80 1.10".into(),
            load_average_end: "2.01 1.20 1.15".into(),
            embeddings: vec![EmbedFigures {
                backend: "wgpu".into(),
                batch: 32,
                tokens_per_text: 15.5,
                iterations: 3,
                embeddings_per_s: 12.345,
                p50_ms: 2592.0,
                tokenize_p50_ms: 1.5,
                untokenized_embeddings_per_s: 12.352,
            }],
            decode: vec![DecodeFigures {
                backend: "candle".into(),
                prompt_tokens: 30,
                prompt_tokens_per_s: 250.04,
                generated: 31,
                tokens_per_s: 40.25,
            }],
            completion: "Once upon".into(),
            agreement: vec![Agreement {
                what: "greedy tokens".into(),
                passed: false,
                detail: "first 8 tokens differ at 5".into(),
            }],
        }
    }

    #[test]
    fn text_report_lists_every_figure() {
        assert_eq!(
            sample().to_text(),
            "adapter: llvmpipe (LLVM 19.1.7, 256 bits) (Vec4)\n\
             load average: 0.52 0.80 1.10 at start, 2.01 1.20 1.15 at end\n\
             MiniLM embeddings (embed(texts) end to end, tokenization included; \"tokenize\": the same \
             SentenceTokenizer's encode_batch on the same texts alone; \"without\": the rate once that time is taken out):\n  \
             wgpu   batch 32 x  15.5 tokens:    12.35 embeddings/s, p50   2592.00 ms (3 calls); \
             tokenize p50 1.50 ms; without: 12.35 embeddings/s\n\
             SmolLM2-135M Q4_1 greedy decode:\n  \
             candle prompt 30 tokens at 250.0 tokens/s, decode 31 tokens at 40.25 tokens/s\n\
             completion: \"Once upon\"\n\
             check greedy tokens: DIFFERS (first 8 tokens differ at 5)\n"
        );
    }

    #[test]
    fn json_report_keeps_field_names_and_values() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["embeddings"][0]["embeddings_per_s"], 12.345);
        assert_eq!(json["embeddings"][0]["p50_ms"], 2592.0);
        assert_eq!(json["decode"][0]["tokens_per_s"], 40.25);
        assert_eq!(json["decode"][0]["prompt_tokens"], 30);
        assert_eq!(json["agreement"][0]["passed"], false);
        assert_eq!(json["weights"]["kind"], "trained");
    }

    #[test]
    fn random_weights_are_said_first_and_loudly() {
        let report = Report {
            weights: Weights::Random { seed: 7, skeleton: "skel".into(), models: "/tmp/m".into() },
            ..sample()
        };
        let text = report.to_text();
        assert!(
            text.starts_with("!!! RANDOM WEIGHTS (seed 7, rebuilt from the skeleton skel into /tmp/m)"),
            "{text}"
        );
        let json = serde_json::to_value(report).unwrap();
        assert_eq!(json["weights"]["kind"], "random");
        assert_eq!(json["weights"]["seed"], 7);
    }
}
