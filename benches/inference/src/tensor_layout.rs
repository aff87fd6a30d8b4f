//! Where the tensors of a weights file lie, read from its header alone (the gateway's
//! `gguf::Header` and `safetensors::Header` parse it), and in which of the encodings the bench
//! can fill with random data. Enough to copy a file's header and to write data of the same
//! encodings at the same offsets, without the data itself.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, ensure};
use tora_inference_gateway::formats::gguf::{self, GgmlType};
use tora_inference_gateway::formats::safetensors;

/// A header longer than this is not a model this bench loads (MiniLM's is 11 KB, SmolLM2's 1.8 MB).
pub(crate) const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The weight file formats the gateway loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TensorFileFormat {
    Safetensors,
    Gguf,
}

impl TensorFileFormat {
    /// The format a file's name says, if it is a weights file.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "safetensors" => Some(Self::Safetensors),
            "gguf" => Some(Self::Gguf),
            _ => None,
        }
    }
}

/// The encodings the bench can fill with random data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    F32,
    F16,
    Bf16,
    I32,
    I64,
    /// ggml's 32 weights as f16 d and 16 bytes of nibbles, w = d (q - 8).
    Q4_0,
    /// ggml's 32 weights as f16 d, f16 m and 16 bytes of nibbles, w = d q + m.
    Q4_1,
    /// ggml's 32 weights as f16 d and 32 int8s, w = d q.
    Q8_0,
}

impl Encoding {
    /// Every ggml type whose storage the gateway knows.
    fn from_ggml(ty: GgmlType) -> Self {
        match ty {
            GgmlType::F32 => Self::F32,
            GgmlType::F16 => Self::F16,
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q8_0 => Self::Q8_0,
            GgmlType::Bf16 => Self::Bf16,
        }
    }

    /// safetensors dtype names.
    fn from_safetensors(dtype: &str) -> Option<Self> {
        match dtype {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::Bf16),
            "I32" => Some(Self::I32),
            "I64" => Some(Self::I64),
            _ => None,
        }
    }
}

/// One tensor's place in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorSpan {
    pub name: String,
    pub encoding: Encoding,
    /// The innermost dimension (a row's length).
    pub row_len: u64,
    /// Absolute offset of its first byte in the file.
    pub start: u64,
    pub len: u64,
}

/// A weights file's header length and its tensors, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes before the data section (for GGUF, the alignment padding included).
    pub header_len: u64,
    pub tensors: Vec<TensorSpan>,
}

impl Layout {
    /// Reads the header of the weights file `path`: its bytes and the layout they describe.
    pub(crate) fn read(path: &Path) -> anyhow::Result<(Vec<u8>, Self)> {
        let format =
            TensorFileFormat::of(path).with_context(|| format!("{}: not a weights file", path.display()))?;
        let mut prefix = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_HEADER_BYTES).read_to_end(&mut prefix))
            .with_context(|| format!("reading {}", path.display()))?;
        let layout = Self::parse(format, &prefix).with_context(|| format!("header of {}", path.display()))?;
        prefix.truncate(layout.header_len as usize);
        Ok((prefix, layout))
    }

    /// Parses the header at the start of `bytes` (the header alone suffices).
    pub(crate) fn parse(format: TensorFileFormat, bytes: &[u8]) -> anyhow::Result<Self> {
        let mut layout = match format {
            TensorFileFormat::Safetensors => safetensors(bytes)?,
            TensorFileFormat::Gguf => gguf(bytes)?,
        };
        // The rebuild writes tensors in data order, so they must not overlap; the gateway's
        // readers do not need that, and do not check it.
        layout.tensors.sort_by_key(|t| t.start);
        let mut end = layout.header_len;
        for t in &layout.tensors {
            ensure!(
                t.start >= end,
                "tensor {} at {} overlaps what lies before it (up to {end})",
                t.name,
                t.start
            );
            end = t.start + t.len;
        }
        Ok(layout)
    }

    /// The end of the last tensor: a file of this layout is at least this long.
    pub(crate) fn data_end(&self) -> u64 {
        self.tensors.last().map_or(self.header_len, |t| t.start + t.len)
    }
}

fn safetensors(bytes: &[u8]) -> anyhow::Result<Layout> {
    let header = safetensors::Header::parse(bytes).map_err(|e| anyhow!(e))?;
    let tensors = header.tensors.into_iter().map(|t| {
        let encoding = Encoding::from_safetensors(&t.dtype)
            .with_context(|| format!("tensor {}: dtype {} has no generator", t.name, t.dtype))?;
        let row_len = t.shape.last().map_or(1, |&d| d as u64);
        Ok(TensorSpan { name: t.name, encoding, row_len, start: t.start, len: t.end - t.start })
    });
    Ok(Layout { header_len: header.data_start, tensors: tensors.collect::<anyhow::Result<_>>()? })
}

fn gguf(bytes: &[u8]) -> anyhow::Result<Layout> {
    let header = gguf::Header::parse(bytes).map_err(|e| anyhow!(e))?;
    let tensors = header.tensors.into_iter().map(|t| {
        // The gateway gives a length exactly where it knows the type.
        let (Ok(ty), Some(len)) = (t.ty, t.len) else {
            return Err(anyhow!("tensor {}: ggml type {} has no generator", t.name, t.ggml_id()));
        };
        let encoding = Encoding::from_ggml(ty);
        Ok(TensorSpan { name: t.name, encoding, row_len: t.dims[0], start: t.start, len })
    });
    Ok(Layout { header_len: header.data_start, tensors: tensors.collect::<anyhow::Result<_>>()? })
}

#[cfg(test)]
mod tests {
    use tora_inference_gateway::formats::gguf::{Value, writer};

    use super::*;

    #[test]
    fn safetensors_spans_are_absolute_and_in_file_order() {
        let header = r#"{"__metadata__":{"format":"pt"},
            "b":{"dtype":"I64","shape":[1,2],"data_offsets":[8,24]},
            "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header.as_bytes());
        let layout = Layout::parse(TensorFileFormat::Safetensors, &file).unwrap();
        let h = 8 + header.len() as u64;
        assert_eq!(layout.header_len, h);
        let spans: Vec<_> =
            layout.tensors.iter().map(|t| (&t.name[..], t.encoding, t.row_len, t.start, t.len)).collect();
        assert_eq!(spans, [("a", Encoding::F32, 2, h, 8), ("b", Encoding::I64, 2, h + 8, 16)]);
        assert_eq!(layout.data_end(), h + 24);
    }

    #[test]
    fn gguf_spans_follow_the_aligned_header() {
        let q4 = [0u8; 20];
        let f32s = [0u8; 8];
        let metadata = [
            ("general.architecture", Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            ),
        ];
        let file = writer::gguf(&metadata, &[("w", &[32, 1], 3, &q4), ("n", &[2], 0, &f32s)]);
        let layout = Layout::parse(TensorFileFormat::Gguf, &file).unwrap();
        assert_eq!(layout.header_len % 32, 0);
        assert_eq!(layout.tensors[0].name, "w");
        assert_eq!(
            (layout.tensors[0].encoding, layout.tensors[0].start, layout.tensors[0].len),
            (Encoding::Q4_1, layout.header_len, 20)
        );
        assert_eq!(
            (layout.tensors[1].encoding, layout.tensors[1].start),
            (Encoding::F32, layout.header_len + 32)
        );
        assert_eq!(layout.data_end(), layout.header_len + 40);
        // The header alone is enough.
        let header_only = &file[..layout.header_len as usize];
        assert_eq!(Layout::parse(TensorFileFormat::Gguf, header_only).unwrap(), layout);
    }

    #[test]
    fn a_truncated_header_or_an_unknown_type_is_an_error() {
        let file = writer::gguf(&[], &[("w", &[32], 12, &[0u8; 32])]);
        let err = format!("{:#}", Layout::parse(TensorFileFormat::Gguf, &file).unwrap_err());
        assert!(err.contains("ggml type 12"), "{err}");
        let err = format!("{:#}", Layout::parse(TensorFileFormat::Gguf, &file[..30]).unwrap_err());
        assert!(err.contains("ends first"), "{err}");
    }
}
