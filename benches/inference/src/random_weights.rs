//! Full-size model files rebuilt from a skeleton (see `skeleton`) with seeded pseudo-random
//! tensor data: the same headers byte for byte, the same sizes, every tensor at its offset,
//! so the gateway's loaders read them unchanged and the kernels run the same work.
//!
//! Throughput does not depend on the weights' values, only on their shapes and encodings;
//! the values only have to stay finite through every layer. Floats are uniform in
//! ±[`WEIGHT_RANGE`]; block-quantised tensors get finite, small f16 scales (and minima) and
//! random quants, so they dequantise into about the same range.

use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use tora_inference_gateway::formats::gguf::{Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES};

use crate::skeleton::{MANIFEST, Manifest, files_under};
use crate::tensor_layout::{Encoding, Layout, TensorFileFormat};

/// Floats are drawn uniformly from ±this: small enough that no activation overflows.
pub(crate) const WEIGHT_RANGE: f32 = 0.05;
/// Written at the root of a rebuilt folder: its weights are noise. A folder without it is never overwritten.
pub(crate) const MARKER: &str = "RANDOM_WEIGHTS";

/// What [`rebuild`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rebuilt {
    /// Weights files written.
    pub weights_files: usize,
    /// Their bytes together.
    pub bytes: u64,
}

/// Writes into `out` the skeleton's files, and each of its weights files at full size with
/// data drawn from `seed`. `out` must be absent, empty or an earlier rebuild (it holds [`MARKER`]).
pub(crate) fn rebuild(skeleton: &Path, out: &Path, seed: u64) -> anyhow::Result<Rebuilt> {
    let manifest = Manifest::read(skeleton)?;
    ensure!(
        !out.exists() || out.join(MARKER).is_file() || std::fs::read_dir(out)?.next().is_none(),
        "{} holds files that are not random weights (no {MARKER} in it): not overwriting them",
        out.display()
    );
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(MARKER), format!("random weights, seed {seed}, from {}\n", skeleton.display()))?;

    let headers: Vec<&Path> = manifest.weights_files.iter().map(|w| w.header.as_path()).collect();
    for rel in files_under(skeleton)? {
        if rel == Path::new(MANIFEST) || headers.contains(&rel.as_path()) {
            continue;
        }
        let to = out.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap_or(out))?;
        std::fs::copy(skeleton.join(&rel), &to).with_context(|| format!("copying {}", rel.display()))?;
    }

    let mut bytes = 0;
    for w in &manifest.weights_files {
        let header = std::fs::read(skeleton.join(&w.header))
            .with_context(|| format!("reading {}", skeleton.join(&w.header).display()))?;
        let format = TensorFileFormat::of(&w.path)
            .with_context(|| format!("{}: not a weights file", w.path.display()))?;
        let layout =
            Layout::parse(format, &header).with_context(|| format!("header of {}", w.path.display()))?;
        ensure!(
            layout.header_len == header.len() as u64,
            "{}: header has trailing bytes",
            w.header.display()
        );
        ensure!(
            layout.data_end() <= w.bytes,
            "{}: tensors end past the file's {} bytes",
            w.path.display(),
            w.bytes
        );
        let path = out.join(&w.path);
        std::fs::create_dir_all(path.parent().unwrap_or(out))?;
        write_weights(&path, &header, &layout, w.bytes, file_seed(seed, &w.path))
            .with_context(|| format!("writing {}", path.display()))?;
        bytes += w.bytes;
    }
    Ok(Rebuilt { weights_files: manifest.weights_files.len(), bytes })
}

/// A fresh folder for a rebuild under the system's temporary folder.
pub(crate) fn default_dir() -> PathBuf {
    std::env::temp_dir().join("tora-random-weights")
}

fn write_weights(path: &Path, header: &[u8], layout: &Layout, bytes: u64, seed: u64) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    out.write_all(header)?;
    let mut at = layout.header_len;
    for t in &layout.tensors {
        zeros(&mut out, t.start - at)?;
        let mut data = vec![0u8; t.len as usize];
        fill(t.encoding, t.row_len, &mut SplitMix64(seed ^ fnv1a(t.name.as_bytes())), &mut data);
        out.write_all(&data)?;
        at = t.start + t.len;
    }
    // GGUF pads the last tensor to the alignment: the same zeros, so the size is the same.
    zeros(&mut out, bytes - at)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn zeros(out: &mut impl std::io::Write, n: u64) -> std::io::Result<()> {
    std::io::copy(&mut std::io::repeat(0).take(n), out).map(drop)
}

/// One tensor's bytes: `row_len` (its innermost dimension) makes integer tensors count
/// 0, 1, … along each row, which is what BERT's int64 `position_ids` hold.
pub(crate) fn fill(encoding: Encoding, row_len: u64, rng: &mut SplitMix64, out: &mut [u8]) {
    let float = |rng: &mut SplitMix64| rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE);
    let row = row_len.max(1);
    match encoding {
        Encoding::F32 => out.chunks_exact_mut(4).for_each(|c| c.copy_from_slice(&float(rng).to_le_bytes())),
        Encoding::F16 => {
            out.chunks_exact_mut(2).for_each(|c| c.copy_from_slice(&f16_bits(float(rng)).to_le_bytes()))
        }
        Encoding::Bf16 => {
            out.chunks_exact_mut(2)
                .for_each(|c| c.copy_from_slice(&half::bf16::from_f32(float(rng)).to_bits().to_le_bytes()));
        }
        Encoding::I32 => {
            let values = (0u64..).map(|i| (i % row) as i32);
            out.chunks_exact_mut(4).zip(values).for_each(|(c, v)| c.copy_from_slice(&v.to_le_bytes()));
        }
        Encoding::I64 => {
            let values = (0u64..).map(|i| (i % row) as i64);
            out.chunks_exact_mut(8).zip(values).for_each(|(c, v)| c.copy_from_slice(&v.to_le_bytes()));
        }
        // Scales are drawn from half to all of what keeps |w| within the range, so blocks differ.
        // Q8_0: w = d q with q in ±127.
        Encoding::Q8_0 => blocks(out, Q8_0_BLOCK_BYTES, |b| {
            let d = rng.uniform(0.5, 1.0) * WEIGHT_RANGE / 127.0;
            b[..2].copy_from_slice(&f16_bits(d).to_le_bytes());
            rng.fill_bytes(&mut b[2..]);
        }),
        // Q4_1: w = d q + m with q in 0..=15; m = -7.5 d centres the block on zero.
        Encoding::Q4_1 => blocks(out, Q4_1_BLOCK_BYTES, |b| {
            let d = rng.uniform(0.5, 1.0) * 2.0 * WEIGHT_RANGE / 15.0;
            b[..2].copy_from_slice(&f16_bits(d).to_le_bytes());
            b[2..4].copy_from_slice(&f16_bits(-7.5 * d).to_le_bytes());
            rng.fill_bytes(&mut b[4..]);
        }),
        // Q4_0: w = d (q - 8) with q in 0..=15.
        Encoding::Q4_0 => blocks(out, Q4_0_BLOCK_BYTES, |b| {
            let d = rng.uniform(0.5, 1.0) * WEIGHT_RANGE / 8.0;
            b[..2].copy_from_slice(&f16_bits(d).to_le_bytes());
            rng.fill_bytes(&mut b[2..]);
        }),
    }
}

fn blocks(out: &mut [u8], block_bytes: usize, mut f: impl FnMut(&mut [u8])) {
    out.chunks_exact_mut(block_bytes).for_each(&mut f);
}

/// IEEE half bits of `v` (every value drawn here lies well inside f16's range).
fn f16_bits(v: f32) -> u16 {
    half::f16::from_f32(v).to_bits()
}

/// Each weights file gets its own stream, by its path, so files do not repeat one another.
fn file_seed(seed: u64, path: &Path) -> u64 {
    SplitMix64(seed ^ fnv1a(path.to_string_lossy().as_bytes())).next_u64()
}

/// FNV-1a, 64 bits: a name to a seed, the same on every machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and the same stream everywhere.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi), from the top 24 bits (an f32's precision).
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
        lo + (hi - lo) * unit
    }

    fn fill_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use tora_inference_gateway::CpuEmbedder;
    use tora_inference_gateway::formats::gguf::{dequantize_q4_1_block, dequantize_q8_0_block};
    use tora_inference_gateway::formats::safetensors::Tensors;
    use tora_inference_gateway::models::bert::{BertConfig, BertWeights};
    use tora_inference_gateway::models::llama::LlamaFiles;

    use super::*;
    use crate::skeleton;

    /// The real model files (scripts/fetch-models.sh); a missing one fails the test, loudly.
    fn models() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models");
        for sub in skeleton::model_dirs() {
            assert!(
                dir.join(&sub).is_dir(),
                "{} is missing: run scripts/fetch-models.sh (these tests need the real model files)",
                dir.join(sub).display()
            );
        }
        dir
    }

    /// A fresh folder under the system's temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tora-bench-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn prefix(path: &Path, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        std::fs::File::open(path).unwrap().take(n).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn rebuilt_models_match_the_originals_layout_and_load_in_the_gateway() {
        let models = models();
        let scratch = Scratch::new("rebuild");
        let (skel, out) = (scratch.0.join("skeleton"), scratch.0.join("models"));
        let size = skeleton::export(&models, &skel).unwrap();
        assert!(size < 8 << 20, "skeleton of {size} bytes");
        let manifest = Manifest::read(&skel).unwrap();
        assert_eq!(manifest.weights_files.len(), 2);

        let rebuilt = rebuild(&skel, &out, 7).unwrap();
        assert_eq!(rebuilt.weights_files, 2);
        for w in &manifest.weights_files {
            let (original, copy) = (models.join(&w.path), out.join(&w.path));
            let (header, layout) = Layout::read(&original).unwrap();
            assert_eq!(prefix(&copy, layout.header_len), header, "{}: header differs", w.path.display());
            let sizes =
                (std::fs::metadata(&copy).unwrap().len(), std::fs::metadata(&original).unwrap().len());
            assert_eq!(sizes.0, sizes.1, "{}: size differs", w.path.display());
        }
        // Every other file travels as it is.
        for dir in skeleton::model_dirs() {
            for rel in files_under(&models.join(&dir)).unwrap() {
                let copy = out.join(&dir).join(&rel);
                if TensorFileFormat::of(&rel).is_none() {
                    assert_eq!(
                        std::fs::read(&copy).unwrap(),
                        std::fs::read(models.join(&dir).join(&rel)).unwrap()
                    );
                }
            }
        }

        // The gateway's own loaders take them: MiniLM's f32 tensors, and a CPU forward pass stays finite.
        let minilm = out.join(&skeleton::model_dirs()[0]);
        let st = Tensors::load(&minilm.join("model.safetensors")).unwrap();
        let original =
            Tensors::load(&models.join(&skeleton::model_dirs()[0]).join("model.safetensors")).unwrap();
        assert_eq!(st.len(), original.len());
        let cfg = BertConfig::load(&minilm).unwrap();
        BertWeights::load(&minilm, &cfg).unwrap();
        let embedded = CpuEmbedder::load(&minilm).unwrap().embed(&["random weights, real shapes"]).unwrap();
        assert!(embedded.vectors[0].iter().all(|v| v.is_finite()), "non-finite embedding");

        // SmolLM2: config, tokenizer and block-quantised weights, in formats the GPU path takes.
        let gguf = out.join(
            &manifest
                .weights_files
                .iter()
                .find(|w| w.path.extension().is_some_and(|e| e == "gguf"))
                .unwrap()
                .path,
        );
        let files = LlamaFiles::load(&gguf).unwrap();
        files.weights.check_gpu_formats().unwrap();
        assert_eq!(files.cfg.layers, 30);

        // The same seed writes the same bytes; the marker lets a rebuild overwrite its folder.
        let first = prefix(&gguf, 4 << 20);
        rebuild(&skel, &out, 7).unwrap();
        assert_eq!(prefix(&gguf, 4 << 20), first);
    }

    #[test]
    fn a_rebuild_never_overwrites_a_folder_of_real_files() {
        let scratch = Scratch::new("refuse");
        std::fs::create_dir_all(&scratch.0).unwrap();
        std::fs::write(scratch.0.join(MANIFEST), "{\"weights_files\":[]}").unwrap();
        let real = scratch.0.join("models");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("model.safetensors"), b"trained").unwrap();
        let err = rebuild(&scratch.0, &real, 1).unwrap_err().to_string();
        assert!(err.contains("not overwriting"), "{err}");
    }

    #[test]
    fn quantised_blocks_dequantise_to_small_finite_weights() {
        let mut rng = SplitMix64(3);
        let mut w = [0f32; 32];
        let mut q8 = vec![0u8; Q8_0_BLOCK_BYTES * 64];
        fill(Encoding::Q8_0, 32, &mut rng, &mut q8);
        let mut q4 = vec![0u8; Q4_1_BLOCK_BYTES * 64];
        fill(Encoding::Q4_1, 32, &mut rng, &mut q4);
        for b in q8.chunks_exact(Q8_0_BLOCK_BYTES) {
            dequantize_q8_0_block(b, &mut w);
            assert!(w.iter().all(|v| v.is_finite() && v.abs() <= WEIGHT_RANGE * 1.01), "{w:?}");
        }
        for b in q4.chunks_exact(Q4_1_BLOCK_BYTES) {
            dequantize_q4_1_block(b, &mut w);
            assert!(w.iter().all(|v| v.is_finite() && v.abs() <= WEIGHT_RANGE * 1.01), "{w:?}");
        }
        let mut f32s = vec![0u8; 4 * 1000];
        fill(Encoding::F32, 1000, &mut rng, &mut f32s);
        let values: Vec<f32> =
            f32s.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert!(values.iter().all(|v| v.abs() <= WEIGHT_RANGE));
        assert!(values.iter().any(|v| *v > 0.04) && values.iter().any(|v| *v < -0.04));
    }

    #[test]
    fn integer_tensors_count_along_each_row() {
        let mut out = vec![0u8; 8 * 6];
        fill(Encoding::I64, 3, &mut SplitMix64(0), &mut out);
        let values: Vec<i64> =
            out.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn the_stream_depends_on_the_seed_only() {
        let draw = |seed| {
            let mut out = vec![0u8; 64];
            fill(Encoding::Q4_1, 32, &mut SplitMix64(seed), &mut out);
            out
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
