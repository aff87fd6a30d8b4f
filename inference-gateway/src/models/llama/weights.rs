//! Llama weights from GGUF, kept block-quantised: Q, K and V fused into one matrix, gate and
//! up into another, so each becomes one matvec.

use crate::error::{Error, Result};
use crate::formats::gguf::{Gguf, TensorType};
use crate::gpu::Gpu;
use crate::kernels::{MatmulVariant, QMatrix, QuantFormat};

use super::LlamaConfig;

/// One decoder block's parameters: matrices `M`, vectors `V`.
pub struct LayerWeights<M, V> {
    /// RMSNorm scale before attention, `[hidden]`.
    pub attn_norm: V,
    /// [q; k; v] rows, [hidden + 2 kv_dim, hidden].
    pub qkv: M,
    /// Attention output projection, `[hidden, hidden]`.
    pub attn_out: M,
    /// RMSNorm scale before the feed-forward part, `[hidden]`.
    pub ffn_norm: V,
    /// [gate; up] rows, [2 ffn, hidden].
    pub gate_up: M,
    /// Feed-forward down projection, `[hidden, ffn]`.
    pub down: M,
}

/// All parameters: `QMatrix`/`Vec<f32>` on the host, `wgpu::Buffer` once uploaded.
pub struct LlamaWeights<M, V> {
    /// [vocab, hidden], Q8_0: both the embedding table and, tied, the LM head.
    pub token_embd: M,
    /// The decoder blocks, in order.
    pub layers: Vec<LayerWeights<M, V>>,
    /// RMSNorm scale after the last block, `[hidden]`.
    pub output_norm: V,
}

/// The weights in host memory, as read from the GGUF.
pub type HostWeights = LlamaWeights<QMatrix, Vec<f32>>;
/// The weights uploaded to the GPU, laid out for the kernels' matvec variant.
pub type GpuWeights = LlamaWeights<wgpu::Buffer, wgpu::Buffer>;

fn matrix(file: &Gguf, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
    let (info, bytes) = file.tensor(name, &[cols as u64, rows as u64])?;
    let format = QuantFormat::from_tensor_type(info.ty).ok_or_else(|| Error::Tensor {
        name: name.into(),
        reason: format!("{:?} where a quantised matrix was expected", info.ty),
    })?;
    QMatrix::new(format, rows, cols, bytes.to_vec())
        .ok_or_else(|| Error::Tensor { name: name.into(), reason: "size does not match its shape".into() })
}

fn vector(file: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    let (info, _) = file.tensor(name, &[len as u64])?;
    if info.ty != TensorType::F32 {
        return Err(Error::Tensor { name: name.into(), reason: format!("{:?}, expected F32", info.ty) });
    }
    file.tensor_f32(name, &[len as u64])
}

fn concat(name: &str, parts: &[QMatrix]) -> Result<QMatrix> {
    QMatrix::concat_rows(parts)
        .ok_or_else(|| Error::Tensor { name: name.into(), reason: "parts differ in format or width".into() })
}

impl HostWeights {
    /// Reads every tensor of `file` named by `cfg`, checking shapes and formats; the LM head must be tied.
    pub fn load(file: &Gguf, cfg: &LlamaConfig) -> Result<Self> {
        let (h, f, kv) = (cfg.hidden, cfg.ffn, cfg.kv_dim());
        let token_embd = matrix(file, "token_embd.weight", cfg.vocab, h)?;
        if token_embd.format != QuantFormat::Q8_0 {
            return Err(Error::UnsupportedModel(format!(
                "token_embd is {:?}; the gather needs Q8_0",
                token_embd.format
            )));
        }
        // The LM head is tied to the embeddings in SmolLM2; a separate head is not supported.
        if file.has_tensor("output.weight") {
            return Err(Error::UnsupportedModel("an untied output.weight".into()));
        }
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let t = |s: &str| format!("blk.{l}.{s}.weight");
            let qkv = [
                matrix(file, &t("attn_q"), h, h)?,
                matrix(file, &t("attn_k"), kv, h)?,
                matrix(file, &t("attn_v"), kv, h)?,
            ];
            let gate_up = [matrix(file, &t("ffn_gate"), f, h)?, matrix(file, &t("ffn_up"), f, h)?];
            layers.push(LayerWeights {
                attn_norm: vector(file, &t("attn_norm"), h)?,
                qkv: concat(&t("attn_qkv"), &qkv)?,
                attn_out: matrix(file, &t("attn_output"), h, h)?,
                ffn_norm: vector(file, &t("ffn_norm"), h)?,
                gate_up: concat(&t("ffn_gate_up"), &gate_up)?,
                down: matrix(file, &t("ffn_down"), h, f)?,
            });
        }
        Ok(Self { token_embd, layers, output_norm: vector(file, "output_norm.weight", h)? })
    }

    /// Refuses a model the GPU path would run wrong: its layer matvecs read Q4_1 only (the LM
    /// head, tied to the Q8_0 embeddings, has its own). The CPU reference dequantises any
    /// format, so a GGUF mixing Q8_0 layers into Q4_1 ones (llama.cpp writes such files) ran
    /// there and gave wrong tokens on the GPU.
    pub fn check_gpu_formats(&self) -> Result<()> {
        for (l, layer) in self.layers.iter().enumerate() {
            let named = [
                ("attn_qkv", &layer.qkv),
                ("attn_output", &layer.attn_out),
                ("ffn_gate_up", &layer.gate_up),
                ("ffn_down", &layer.down),
            ];
            if let Some((name, m)) = named.into_iter().find(|(_, m)| m.format != QuantFormat::Q4_1) {
                return Err(Error::UnsupportedModel(format!(
                    "blk.{l}.{name} is {:?}; the GPU path reads layer matrices as Q4_1 only",
                    m.format
                )));
            }
        }
        Ok(())
    }

    /// Copies every tensor to the GPU, matrices in the layout `variant`'s matvec reads.
    pub fn upload(&self, gpu: &Gpu, variant: MatmulVariant) -> GpuWeights {
        let m = |name: &str, w: &QMatrix| gpu.upload_u32(name, &w.gpu_words(variant));
        let v = |name: &str, x: &Vec<f32>| gpu.upload_f32(name, x);
        LlamaWeights {
            token_embd: m("token_embd", &self.token_embd),
            layers: self
                .layers
                .iter()
                .map(|l| LayerWeights {
                    attn_norm: v("attn_norm", &l.attn_norm),
                    qkv: m("qkv", &l.qkv),
                    attn_out: m("attn_out", &l.attn_out),
                    ffn_norm: v("ffn_norm", &l.ffn_norm),
                    gate_up: m("gate_up", &l.gate_up),
                    down: m("down", &l.down),
                })
                .collect(),
            output_norm: v("output_norm", &self.output_norm),
        }
    }
}
