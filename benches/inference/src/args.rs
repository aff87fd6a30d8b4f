//! Command-line options. Defaults are sized for lavapipe on 2 cores (a few minutes in all).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tora_inference_gateway::MatmulVariant;

#[derive(Parser, Debug, PartialEq)]
#[command(
    about = "MiniLM embeddings and SmolLM2 decoding: the wgpu path, and candle on the CPU with --features candle"
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run on random weights of the models' exact layout, rebuilt from this skeleton (made by
    /// `skeleton`) into --models, or a temporary folder: throughput only, for machines the
    /// 190 MB of real weights cannot reach.
    #[arg(long, value_name = "SKELETON_DIR")]
    pub random_weights: Option<PathBuf>,
    /// The seed of the random weights.
    #[arg(long, default_value_t = 1, requires = "random_weights")]
    pub seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Folder with all-minilm-l6-v2/ and smollm2-135m-instruct/ (scripts/fetch-models.sh).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Untimed calls before each measurement.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed calls of one text each.
    #[arg(long, default_value_t = 16)]
    pub batch1_calls: usize,
    /// Timed calls of 32 texts each.
    #[arg(long, default_value_t = 3)]
    pub batch32_calls: usize,
    /// Timed calls of 32 texts of exactly 128 tokens each (0: skip them).
    #[arg(long, default_value_t = 2)]
    pub long_calls: usize,
    /// Tokens to generate greedily (the first comes with the prompt pass).
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Sequences decoded together in the batched decode measurement (1: skip it).
    #[arg(long, default_value_t = 4)]
    pub sequences: usize,
    /// Leading greedy tokens that candle and wgpu must agree on.
    #[arg(long, default_value_t = 8)]
    pub check_tokens: usize,
    /// Force the matmul kernel instead of the one the adapter suits.
    #[arg(long, value_enum)]
    pub matmul: Option<Matmul>,
}

#[derive(Subcommand, Debug, PartialEq)]
pub(crate) enum Command {
    /// Write the models' skeleton (every file but the tensor data; weights files as their
    /// headers) to a folder, for `--random-weights` on another machine.
    Skeleton {
        /// The folder to create (must not exist or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// List the Vulkan adapters wgpu sees, the one the gateway picks first.
    Adapters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Matmul {
    Vec4,
    Tiled,
}

impl From<Matmul> for MatmulVariant {
    fn from(m: Matmul) -> Self {
        match m {
            Matmul::Vec4 => MatmulVariant::Vec4,
            Matmul::Tiled => MatmulVariant::Tiled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_lavapipe() {
        let args = Args::try_parse_from(["bench"]).unwrap();
        assert_eq!(
            args,
            Args {
                command: None,
                random_weights: None,
                seed: 1,
                json: None,
                models: None,
                warmup: 1,
                batch1_calls: 16,
                batch32_calls: 3,
                long_calls: 2,
                tokens: 64,
                sequences: 4,
                check_tokens: 8,
                matmul: None,
            }
        );
    }

    #[test]
    fn every_option_parses() {
        let args = Args::try_parse_from([
            "bench",
            "--json",
            "out.json",
            "--models",
            "/m",
            "--warmup",
            "2",
            "--batch1-calls",
            "5",
            "--batch32-calls",
            "1",
            "--long-calls",
            "0",
            "--random-weights",
            "skel",
            "--seed",
            "9",
            "--tokens",
            "64",
            "--check-tokens",
            "4",
            "--matmul",
            "tiled",
        ])
        .unwrap();
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        assert_eq!(args.models, Some(PathBuf::from("/m")));
        assert_eq!((args.warmup, args.batch1_calls, args.batch32_calls), (2, 5, 1));
        assert_eq!((args.tokens, args.check_tokens), (64, 4));
        assert_eq!(args.matmul.map(MatmulVariant::from), Some(MatmulVariant::Tiled));
        assert_eq!((args.long_calls, args.random_weights, args.seed), (0, Some(PathBuf::from("skel")), 9));
        assert!(Args::try_parse_from(["bench", "--matmul", "cuda"]).is_err());
        assert!(Args::try_parse_from(["bench", "--seed", "3"]).is_err(), "a seed without random weights");
    }

    #[test]
    fn subcommands_parse() {
        let args = Args::try_parse_from(["bench", "--models", "/m", "skeleton", "--out", "s"]).unwrap();
        assert_eq!(args.command, Some(Command::Skeleton { out: PathBuf::from("s") }));
        assert_eq!(args.models, Some(PathBuf::from("/m")));
        assert_eq!(Args::try_parse_from(["bench", "adapters"]).unwrap().command, Some(Command::Adapters));
    }
}
