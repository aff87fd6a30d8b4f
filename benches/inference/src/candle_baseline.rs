//! The CPU baseline: candle's BERT and quantised Llama on the very files the gateway loads
//! (MiniLM safetensors, SmolLM2 Q4_1 GGUF), and the gateway's tokenizers, so that only the
//! forward passes differ.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use candle_transformers::models::quantized_llama::ModelWeights;
use tora_inference_gateway::SentenceTokenizer;

use crate::measure::{GreedyDecoder, SentenceEmbedder};

pub(crate) struct CandleBert {
    model: BertModel,
    tokenizer: SentenceTokenizer,
    device: Device,
}

impl CandleBert {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let device = Device::Cpu;
        let config: Config = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
        let weights = std::fs::read(dir.join("model.safetensors"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self { model, tokenizer: SentenceTokenizer::load(dir)?, device })
    }
}

impl SentenceEmbedder for CandleBert {
    /// Pads the batch with id 0 ([PAD]) under a zero mask, then pools as sentence-transformers
    /// does: the mean of the unmasked token states, scaled to unit length.
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let seqs = self.tokenizer.encode_batch(texts)?;
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * len);
        let mut mask = Vec::with_capacity(seqs.len() * len);
        for s in &seqs {
            ids.extend(s.iter().copied().chain(std::iter::repeat_n(0, len - s.len())));
            mask.extend((0..len).map(|i| u32::from(i < s.len())));
        }
        let ids = Tensor::from_vec(ids, (seqs.len(), len), &self.device)?;
        let mask = Tensor::from_vec(mask, (seqs.len(), len), &self.device)?;
        let states = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = states.broadcast_mul(&mask)?.sum(1)?;
        let mean = summed.broadcast_div(&mask.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

pub(crate) struct CandleLlama {
    model: ModelWeights,
    position: usize,
    device: Device,
}

impl CandleLlama {
    pub(crate) fn load(gguf: &Path) -> anyhow::Result<Self> {
        let device = Device::Cpu;
        let mut file = std::fs::File::open(gguf)?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)?;
        let model = ModelWeights::from_gguf(content, &mut file, &device)?;
        Ok(Self { model, position: 0, device })
    }
}

impl GreedyDecoder for CandleLlama {
    /// candle's cache restarts itself at position 0.
    fn reset(&mut self) {
        self.position = 0;
    }

    fn next_greedy(&mut self, ids: &[u32]) -> anyhow::Result<u32> {
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let logits = self.model.forward(&input, self.position)?;
        self.position += ids.len();
        Ok(logits.squeeze(0)?.argmax(D::Minus1)?.to_scalar::<u32>()?)
    }
}
