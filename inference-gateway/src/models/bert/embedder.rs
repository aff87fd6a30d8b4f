//! Sentence embeddings from text: tokenizer + BERT + pooling, on the GPU ([`Embedder`]) or on
//! the CPU references ([`CpuEmbedder`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Kernels, MatmulVariant, ShapeCache};
use crate::models::bert::tokenizer::SentenceTokenizer;
use crate::models::bert::{self, BertConfig, BertWeights, ForwardResources, TokenBatch};

/// Most texts accepted in one call: bounds the activation memory of one forward pass
/// (64 x 256 tokens x 1536 f32 for the FFN is 100 MB).
pub const MAX_BATCH: usize = 64;

/// Embeddings of a batch of texts, in input order, with what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens each text ran through the model ([CLS] and [SEP] included, after truncation):
    /// the unit of metering, since compute grows with it.
    pub tokens: Vec<usize>,
}

impl Embeddings {
    /// Tokens of all the texts together: what the call is charged for.
    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().map(|&t| t as u64).sum()
    }
}

/// What both embedders share: the tokenizer and the config that the batch is checked against.
struct Frontend {
    cfg: BertConfig,
    tokenizer: SentenceTokenizer,
}

impl Frontend {
    fn load(dir: &Path) -> Result<Self> {
        Ok(Self { cfg: BertConfig::load(dir)?, tokenizer: SentenceTokenizer::load(dir)? })
    }

    fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch> {
        if texts.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if texts.len() > MAX_BATCH {
            return Err(Error::BatchTooLarge { got: texts.len(), max: MAX_BATCH });
        }
        let seqs = self.tokenizer.encode_batch(texts)?;
        for s in &seqs {
            // Guards the kernels' preconditions; a tokenizer that matches its model never trips them.
            if s.is_empty() || s.len() > self.cfg.max_positions {
                return Err(Error::Tokenizer(format!("{} tokens for one text", s.len())));
            }
            if let Some(&id) = s.iter().find(|&&id| id as usize >= self.cfg.vocab) {
                return Err(Error::Tokenizer(format!("token id {id} outside the model's vocabulary")));
            }
        }
        Ok(TokenBatch::pad(&seqs))
    }

    fn finish(&self, batch: &TokenBatch, flat: Vec<f32>) -> Embeddings {
        Embeddings {
            vectors: flat.chunks_exact(self.cfg.hidden).map(<[f32]>::to_vec).collect(),
            tokens: batch.lens.iter().map(|&l| l as usize).collect(),
        }
    }
}

/// Sentence embeddings on the GPU (or lavapipe), one command buffer per call.
pub struct Embedder {
    front: Frontend,
    gpu: Gpu,
    kernels: Kernels,
    weights: BertWeights<wgpu::Buffer>,
    /// The forward passes' resources per batch shape (texts, padded length).
    shapes: Mutex<ShapeCache<(usize, usize), ForwardResources>>,
    /// Bind groups the forward passes have created, counted by every shape's cache.
    bind_groups_created: Arc<AtomicU64>,
}

/// Batch shapes whose resources are kept: a server sees a handful often (full batches of
/// similar texts), the rest now and then.
const KEPT_SHAPES: usize = 8;

impl Embedder {
    /// Loads the model in `dir` (config.json, tokenizer.json, model.safetensors) onto the best
    /// Vulkan adapter, with the matmul kernel that suits it.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, None)
    }

    /// As [`Embedder::load`], with the matmul kernel forced when `variant` is given.
    pub fn load_with(dir: &Path, variant: Option<MatmulVariant>) -> Result<Self> {
        // Model files first: a missing model should say so even on a machine with no GPU.
        let front = Frontend::load(dir)?;
        let host = BertWeights::load(dir, &front.cfg)?;
        let gpu = Gpu::new()?;
        let kernels = Kernels::new(&gpu.device, variant.unwrap_or_else(|| gpu.preferred_matmul()));
        let weights = host.upload(&gpu, &front.cfg);
        let shapes = Mutex::new(ShapeCache::new(KEPT_SHAPES));
        Ok(Self { front, gpu, kernels, weights, shapes, bind_groups_created: Arc::default() })
    }

    /// Embeds `texts` (1 to [`MAX_BATCH`]) in one forward pass on the GPU.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        let batch = self.front.tokenize(texts)?;
        let shape = (batch.batch(), batch.seq_len);
        let cfg = &self.front.cfg;
        let created = &self.bind_groups_created;
        let make = || ForwardResources::new(&self.gpu, cfg, shape.0, shape.1, created);
        let mut r = self.lock_shapes().take(&shape, make);
        let flat = bert::forward_gpu(&self.gpu, &self.kernels, cfg, &self.weights, &batch, &mut r);
        self.lock_shapes().put(shape, r);
        Ok(self.front.finish(&batch, flat?))
    }

    /// Bind groups the forward passes have created so far: a batch of a shape already embedded
    /// creates none.
    pub fn bind_groups_created(&self) -> u64 {
        self.bind_groups_created.load(Ordering::Relaxed)
    }

    fn lock_shapes(&self) -> std::sync::MutexGuard<'_, ShapeCache<(usize, usize), ForwardResources>> {
        // Taking or putting back an entry cannot leave the cache half-changed.
        self.shapes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Vulkan adapter the model runs on.
    pub fn adapter(&self) -> &wgpu::AdapterInfo {
        &self.gpu.info
    }

    /// The matmul shader in use.
    pub fn matmul_variant(&self) -> MatmulVariant {
        self.kernels.matmul_variant()
    }

    /// Length of each embedding (the model's hidden size).
    pub fn dim(&self) -> usize {
        self.front.cfg.hidden
    }
}

/// Sentence embeddings on the kernels' plain-Rust references: slow, but the yardstick the GPU
/// path is held to, and a fallback where no Vulkan driver exists.
pub struct CpuEmbedder {
    front: Frontend,
    weights: BertWeights<Vec<f32>>,
}

impl CpuEmbedder {
    /// Loads the model in `dir` (config.json, tokenizer.json, model.safetensors) into host memory.
    pub fn load(dir: &Path) -> Result<Self> {
        let front = Frontend::load(dir)?;
        let weights = BertWeights::load(dir, &front.cfg)?;
        Ok(Self { front, weights })
    }

    /// Embeds `texts` (1 to [`MAX_BATCH`]) on the CPU references.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        let batch = self.front.tokenize(texts)?;
        let flat = bert::forward_cpu(&self.front.cfg, &self.weights, &batch);
        Ok(self.front.finish(&batch, flat))
    }

    /// Length of each embedding (the model's hidden size).
    pub fn dim(&self) -> usize {
        self.front.cfg.hidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The HTTP layer will share one embedder between request tasks.
    #[test]
    fn embedders_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Embedder>();
        shareable::<CpuEmbedder>();
    }

    #[test]
    fn total_tokens_sums_every_text() {
        let e = Embeddings { vectors: vec![vec![1.0], vec![1.0]], tokens: vec![12, 256] };
        assert_eq!(e.total_tokens(), 268);
    }
}
