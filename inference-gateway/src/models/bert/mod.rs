//! BERT encoder (all-MiniLM-L6-v2 and its relatives): weights, and the forward pass both on
//! the GPU and on the kernels' CPU references.

pub mod embedder;
pub mod queue;
pub mod tokenizer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::formats::safetensors::Tensors;
use crate::gpu::Gpu;
use crate::kernels::{
    Activation, AttentionDims, BindGroupCache, EmbeddingDims, EmbeddingTables, HEAD_DIM, Kernels,
    LayerNormDims, LinearDims, Pass, PoolDims, attention_cpu, embeddings_cpu, layer_norm_cpu, linear_cpu,
    pool_normalize_cpu, to_input_major,
};
use crate::model_dir::model_file;

/// The fields of Hugging Face's config.json that the forward pass depends on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Hidden size: values per token between layers (`hidden_size`).
    #[serde(rename = "hidden_size")]
    pub hidden: usize,
    /// Attention heads per layer (`num_attention_heads`).
    #[serde(rename = "num_attention_heads")]
    pub heads: usize,
    /// Encoder layers (`num_hidden_layers`).
    #[serde(rename = "num_hidden_layers")]
    pub layers: usize,
    /// Width of each layer's feed-forward block (`intermediate_size`).
    #[serde(rename = "intermediate_size")]
    pub intermediate: usize,
    /// Token ids the word table covers (`vocab_size`).
    #[serde(rename = "vocab_size")]
    pub vocab: usize,
    /// Longest sequence the position table covers, in tokens (`max_position_embeddings`).
    #[serde(rename = "max_position_embeddings")]
    pub max_positions: usize,
    /// Epsilon of every LayerNorm (`layer_norm_eps`).
    #[serde(rename = "layer_norm_eps")]
    pub ln_eps: f32,
    /// The feed-forward activation; only `gelu` (the erf form) is supported.
    pub hidden_act: String,
}

impl BertConfig {
    /// Reads `dir/config.json` and checks the kernels can run it.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = model_file(dir, "config.json")?;
        let text =
            std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let cfg: Self = serde_json::from_str(&text)
            .map_err(|e| Error::InvalidModelFile { path, reason: e.to_string() })?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let unsupported = |why: String| Err(Error::UnsupportedModel(why));
        if self.heads == 0 || self.hidden != self.heads * HEAD_DIM {
            return unsupported(format!(
                "hidden {} / {} heads: the attention kernel needs head dim {HEAD_DIM}",
                self.hidden, self.heads
            ));
        }
        if !self.intermediate.is_multiple_of(4) || self.intermediate == 0 {
            return unsupported(format!("intermediate size {} is not a multiple of 4", self.intermediate));
        }
        if self.hidden_act != "gelu" {
            return unsupported(format!("activation {:?} (only erf GELU is implemented)", self.hidden_act));
        }
        if self.vocab == 0 || self.max_positions == 0 {
            return unsupported("empty vocabulary or position table".into());
        }
        Ok(())
    }
}

/// Token ids of several texts, padded with id 0 to the longest, plus each text's real length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// [batch][seq_len], row-major.
    pub ids: Vec<u32>,
    /// Real (unpadded) length of each text, in tokens.
    pub lens: Vec<u32>,
    /// Padded length: the longest text's.
    pub seq_len: usize,
}

impl TokenBatch {
    /// Pads `seqs`; each must be non-empty (the tokenizer always adds [CLS] and [SEP]).
    pub fn pad(seqs: &[Vec<u32>]) -> Self {
        let seq_len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![0u32; seqs.len() * seq_len];
        for (row, s) in ids.chunks_exact_mut(seq_len.max(1)).zip(seqs) {
            row[..s.len()].copy_from_slice(s);
        }
        Self { ids, lens: seqs.iter().map(|s| s.len() as u32).collect(), seq_len }
    }

    /// Texts in the batch.
    pub fn batch(&self) -> usize {
        self.lens.len()
    }

    /// Token rows in the batch, padding included: texts times `seq_len`.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}

/// One encoder layer's parameters. Q, K and V are fused into one [3 * hidden, hidden]
/// projection so attention needs one matmul dispatch, not three. Matmul weights are
/// PyTorch's `[out, in]` on the host and input-major ([`to_input_major`]) once uploaded.
pub struct LayerWeights<T> {
    /// Fused query, key and value weights, `[3 * hidden, hidden]`.
    pub qkv_w: T,
    /// Fused query, key and value biases, `[3 * hidden]`.
    pub qkv_b: T,
    /// Attention output projection weight, `[hidden, hidden]`.
    pub attn_out_w: T,
    /// Attention output projection bias, `[hidden]`.
    pub attn_out_b: T,
    /// Scale of the LayerNorm after attention, `[hidden]`.
    pub attn_ln_g: T,
    /// Shift of the LayerNorm after attention, `[hidden]`.
    pub attn_ln_b: T,
    /// Feed-forward input projection weight, `[intermediate, hidden]`.
    pub ffn_in_w: T,
    /// Feed-forward input projection bias, `[intermediate]`.
    pub ffn_in_b: T,
    /// Feed-forward output projection weight, `[hidden, intermediate]`.
    pub ffn_out_w: T,
    /// Feed-forward output projection bias, `[hidden]`.
    pub ffn_out_b: T,
    /// Scale of the LayerNorm after the feed-forward block, `[hidden]`.
    pub ffn_ln_g: T,
    /// Shift of the LayerNorm after the feed-forward block, `[hidden]`.
    pub ffn_ln_b: T,
}

/// All parameters: `Vec<f32>` on the host, `wgpu::Buffer` once uploaded.
pub struct BertWeights<T> {
    /// Word embeddings, `[vocab, hidden]`.
    pub word: T,
    /// Position embeddings, `[max_positions, hidden]`.
    pub position: T,
    /// Row 0 of the token type table: single-text inputs never use type 1.
    pub token_type: T,
    /// Scale of the LayerNorm after the embeddings, `[hidden]`.
    pub emb_ln_g: T,
    /// Shift of the LayerNorm after the embeddings, `[hidden]`.
    pub emb_ln_b: T,
    /// The encoder layers, in order.
    pub layers: Vec<LayerWeights<T>>,
}

impl BertWeights<Vec<f32>> {
    /// Loads `dir/model.safetensors`, checking every shape against `cfg`.
    pub fn load(dir: &Path, cfg: &BertConfig) -> Result<Self> {
        let mut t = Tensors::load(&model_file(dir, "model.safetensors")?)?;
        let (h, f) = (cfg.hidden, cfg.intermediate);
        let mut token_type = t.take("embeddings.token_type_embeddings.weight", &[2, h])?;
        token_type.truncate(h);
        let mut weights = Self {
            word: t.take("embeddings.word_embeddings.weight", &[cfg.vocab, h])?,
            position: t.take("embeddings.position_embeddings.weight", &[cfg.max_positions, h])?,
            token_type,
            emb_ln_g: t.take("embeddings.LayerNorm.weight", &[h])?,
            emb_ln_b: t.take("embeddings.LayerNorm.bias", &[h])?,
            layers: Vec::with_capacity(cfg.layers),
        };
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}.");
            let mut qkv_w = t.take(&format!("{p}attention.self.query.weight"), &[h, h])?;
            qkv_w.extend(t.take(&format!("{p}attention.self.key.weight"), &[h, h])?);
            qkv_w.extend(t.take(&format!("{p}attention.self.value.weight"), &[h, h])?);
            let mut qkv_b = t.take(&format!("{p}attention.self.query.bias"), &[h])?;
            qkv_b.extend(t.take(&format!("{p}attention.self.key.bias"), &[h])?);
            qkv_b.extend(t.take(&format!("{p}attention.self.value.bias"), &[h])?);
            weights.layers.push(LayerWeights {
                qkv_w,
                qkv_b,
                attn_out_w: t.take(&format!("{p}attention.output.dense.weight"), &[h, h])?,
                attn_out_b: t.take(&format!("{p}attention.output.dense.bias"), &[h])?,
                attn_ln_g: t.take(&format!("{p}attention.output.LayerNorm.weight"), &[h])?,
                attn_ln_b: t.take(&format!("{p}attention.output.LayerNorm.bias"), &[h])?,
                ffn_in_w: t.take(&format!("{p}intermediate.dense.weight"), &[f, h])?,
                ffn_in_b: t.take(&format!("{p}intermediate.dense.bias"), &[f])?,
                ffn_out_w: t.take(&format!("{p}output.dense.weight"), &[h, f])?,
                ffn_out_b: t.take(&format!("{p}output.dense.bias"), &[h])?,
                ffn_ln_g: t.take(&format!("{p}output.LayerNorm.weight"), &[h])?,
                ffn_ln_b: t.take(&format!("{p}output.LayerNorm.bias"), &[h])?,
            });
        }
        Ok(weights)
    }

    /// Copies every tensor to the GPU, matmul weights in the kernels' input-major layout.
    pub fn upload(&self, gpu: &Gpu, cfg: &BertConfig) -> BertWeights<wgpu::Buffer> {
        let up = |name: &str, v: &Vec<f32>| gpu.upload_f32(name, v);
        let (h, f) = (cfg.hidden, cfg.intermediate);
        let up_t = |name: &str, v: &Vec<f32>, n: usize, k: usize| {
            gpu.upload_f32(name, &to_input_major(v, LinearDims { m: 0, n, k }))
        };
        BertWeights {
            word: up("word", &self.word),
            position: up("position", &self.position),
            token_type: up("token_type", &self.token_type),
            emb_ln_g: up("emb_ln_g", &self.emb_ln_g),
            emb_ln_b: up("emb_ln_b", &self.emb_ln_b),
            layers: self
                .layers
                .iter()
                .map(|l| LayerWeights {
                    qkv_w: up_t("qkv_w", &l.qkv_w, 3 * h, h),
                    qkv_b: up("qkv_b", &l.qkv_b),
                    attn_out_w: up_t("attn_out_w", &l.attn_out_w, h, h),
                    attn_out_b: up("attn_out_b", &l.attn_out_b),
                    attn_ln_g: up("attn_ln_g", &l.attn_ln_g),
                    attn_ln_b: up("attn_ln_b", &l.attn_ln_b),
                    ffn_in_w: up_t("ffn_in_w", &l.ffn_in_w, f, h),
                    ffn_in_b: up("ffn_in_b", &l.ffn_in_b),
                    ffn_out_w: up_t("ffn_out_w", &l.ffn_out_w, h, f),
                    ffn_out_b: up("ffn_out_b", &l.ffn_out_b),
                    ffn_ln_g: up("ffn_ln_g", &l.ffn_ln_g),
                    ffn_ln_b: up("ffn_ln_b", &l.ffn_ln_b),
                })
                .collect(),
        }
    }
}

fn embedding_dims(cfg: &BertConfig, batch: &TokenBatch) -> EmbeddingDims {
    EmbeddingDims {
        rows: batch.rows(),
        seq_len: batch.seq_len,
        dim: cfg.hidden,
        vocab: cfg.vocab,
        max_positions: cfg.max_positions,
        eps: cfg.ln_eps,
    }
}

/// The forward pass on the CPU references: sentence embeddings, [batch, hidden] row-major.
/// The batch must be non-empty with ids < vocab and seq_len <= max_positions.
pub fn forward_cpu(cfg: &BertConfig, w: &BertWeights<Vec<f32>>, batch: &TokenBatch) -> Vec<f32> {
    let (h, f, rows) = (cfg.hidden, cfg.intermediate, batch.rows());
    let ln = LayerNormDims { rows, dim: h, eps: cfg.ln_eps };
    let tables = EmbeddingTables {
        word: w.word.as_slice(),
        position: &w.position,
        token_type: &w.token_type,
        gamma: &w.emb_ln_g,
        beta: &w.emb_ln_b,
    };
    let mut x = embeddings_cpu(&batch.ids, &tables, embedding_dims(cfg, batch));
    for l in &w.layers {
        let qkv =
            linear_cpu(&x, &l.qkv_w, &l.qkv_b, LinearDims { m: rows, n: 3 * h, k: h }, Activation::None);
        let ctx = attention_cpu(
            &qkv,
            &batch.lens,
            AttentionDims { batch: batch.batch(), seq_len: batch.seq_len, heads: cfg.heads },
        );
        let attn = linear_cpu(
            &ctx,
            &l.attn_out_w,
            &l.attn_out_b,
            LinearDims { m: rows, n: h, k: h },
            Activation::None,
        );
        let x1 = layer_norm_cpu(&attn, &x, &l.attn_ln_g, &l.attn_ln_b, ln);
        let inter =
            linear_cpu(&x1, &l.ffn_in_w, &l.ffn_in_b, LinearDims { m: rows, n: f, k: h }, Activation::Gelu);
        let out = linear_cpu(
            &inter,
            &l.ffn_out_w,
            &l.ffn_out_b,
            LinearDims { m: rows, n: h, k: f },
            Activation::None,
        );
        x = layer_norm_cpu(&out, &x1, &l.ffn_ln_g, &l.ffn_ln_b, ln);
    }
    pool_normalize_cpu(&x, &batch.lens, PoolDims { batch: batch.batch(), seq_len: batch.seq_len, dim: h })
}

/// A forward pass's buffers and bind groups for one batch shape (texts, padded length), made by
/// its first pass and reused by the next ones of that shape: a few hundred bind groups and
/// uniform buffers per call otherwise cost more than MiniLM's small kernels do on a GPU.
pub struct ForwardResources {
    ids: wgpu::Buffer,
    lens: wgpu::Buffer,
    /// Two hidden-state buffers alternate: a dispatch may not read and write the same buffer.
    x: wgpu::Buffer,
    x1: wgpu::Buffer,
    qkv: wgpu::Buffer,
    ctx: wgpu::Buffer,
    proj: wgpu::Buffer,
    inter: wgpu::Buffer,
    pooled: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_groups: BindGroupCache,
}

impl ForwardResources {
    /// Resources for batches of `texts` texts padded to `seq_len` tokens, counting the bind
    /// groups they create into `created`.
    pub fn new(gpu: &Gpu, cfg: &BertConfig, texts: usize, seq_len: usize, created: &Arc<AtomicU64>) -> Self {
        let (h, rows) = (cfg.hidden, texts * seq_len);
        let input = |label, len| gpu.storage(label, len, wgpu::BufferUsages::COPY_DST);
        let scratch = |label, len| gpu.storage(label, len, wgpu::BufferUsages::empty());
        Self {
            ids: input("ids", rows),
            lens: input("lens", texts),
            x: scratch("x", rows * h),
            x1: scratch("x1", rows * h),
            qkv: scratch("qkv", rows * 3 * h),
            ctx: scratch("ctx", rows * h),
            proj: scratch("proj", rows * h),
            inter: scratch("inter", rows * cfg.intermediate),
            pooled: gpu.storage("pooled", texts * h, wgpu::BufferUsages::COPY_SRC),
            readback: gpu.readback_buffer(texts * h),
            bind_groups: BindGroupCache::counting_into(created),
        }
    }
}

/// The forward pass on the GPU, recorded into one command buffer and submitted once, over `r`
/// (made for this batch's shape): sentence embeddings, [batch, hidden] row-major. Same
/// preconditions as [`forward_cpu`].
pub fn forward_gpu(
    gpu: &Gpu,
    kernels: &Kernels,
    cfg: &BertConfig,
    w: &BertWeights<wgpu::Buffer>,
    batch: &TokenBatch,
    r: &mut ForwardResources,
) -> Result<Vec<f32>> {
    let (h, f, rows) = (cfg.hidden, cfg.intermediate, batch.rows());
    gpu.queue.write_buffer(&r.ids, 0, bytemuck::cast_slice(&batch.ids));
    gpu.queue.write_buffer(&r.lens, 0, bytemuck::cast_slice(&batch.lens));
    let (ids, lens, x, x1, qkv) = (&r.ids, &r.lens, &r.x, &r.x1, &r.qkv);
    let (ctx, proj, inter, pooled) = (&r.ctx, &r.proj, &r.inter, &r.pooled);

    let ln = LayerNormDims { rows, dim: h, eps: cfg.ln_eps };
    let attn_dims = AttentionDims { batch: batch.batch(), seq_len: batch.seq_len, heads: cfg.heads };
    let mut encoder =
        gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bert") });
    {
        let mut pass = Pass::cached(&gpu.device, &mut encoder, &mut r.bind_groups);
        let tables = EmbeddingTables {
            word: &w.word,
            position: &w.position,
            token_type: &w.token_type,
            gamma: &w.emb_ln_g,
            beta: &w.emb_ln_b,
        };
        kernels.embeddings(&mut pass, ids, &tables, x, embedding_dims(cfg, batch));
        for l in &w.layers {
            kernels.linear(
                &mut pass,
                [x, &l.qkv_w, &l.qkv_b, qkv],
                LinearDims { m: rows, n: 3 * h, k: h },
                Activation::None,
            );
            kernels.attention(&mut pass, [qkv, lens, ctx], attn_dims);
            kernels.linear(
                &mut pass,
                [ctx, &l.attn_out_w, &l.attn_out_b, proj],
                LinearDims { m: rows, n: h, k: h },
                Activation::None,
            );
            kernels.layer_norm(&mut pass, [proj, x, &l.attn_ln_g, &l.attn_ln_b, x1], ln);
            kernels.linear(
                &mut pass,
                [x1, &l.ffn_in_w, &l.ffn_in_b, inter],
                LinearDims { m: rows, n: f, k: h },
                Activation::Gelu,
            );
            kernels.linear(
                &mut pass,
                [inter, &l.ffn_out_w, &l.ffn_out_b, proj],
                LinearDims { m: rows, n: h, k: f },
                Activation::None,
            );
            kernels.layer_norm(&mut pass, [proj, x1, &l.ffn_ln_g, &l.ffn_ln_b, x], ln);
        }
        kernels.pool_normalize(
            &mut pass,
            [x, lens, pooled],
            PoolDims { batch: batch.batch(), seq_len: batch.seq_len, dim: h },
        );
    }
    gpu.submit_and_read_through(encoder, pooled, &r.readback, batch.batch() * h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_fills_with_zeros_and_keeps_lengths() {
        let b = TokenBatch::pad(&[vec![101, 7, 102], vec![101, 102]]);
        assert_eq!(b.seq_len, 3);
        assert_eq!(b.ids, vec![101, 7, 102, 101, 102, 0]);
        assert_eq!(b.lens, vec![3, 2]);
    }

    #[test]
    fn config_rejects_head_dims_the_kernel_cannot_run() {
        let cfg = BertConfig {
            hidden: 384,
            heads: 6,
            layers: 1,
            intermediate: 1536,
            vocab: 10,
            max_positions: 8,
            ln_eps: 1e-12,
            hidden_act: "gelu".into(),
        };
        let err = cfg.check().unwrap_err().to_string();
        assert!(err.contains("head dim 32"), "{err}");
        assert!(BertConfig { heads: 12, ..cfg }.check().is_ok());
    }
}
