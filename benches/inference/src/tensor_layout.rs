//! Where the tensors of a weights file lie, read from its header alone: the safetensors JSON
//! header or the GGUF header (metadata and tensor infos). Enough to copy a file's header and
//! to write data of the same encodings at the same offsets, without the data itself.
//!
//! The gateway's readers parse whole files and keep tensor offsets private; this reads only
//! the header, which is all a skeleton carries.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

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

/// How one tensor's values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    F32,
    F16,
    Bf16,
    I32,
    I64,
    /// ggml type 2: 32 weights as f16 d and 16 bytes of nibbles, w = d (q - 8).
    Q4_0,
    /// ggml type 3: 32 weights as f16 d, f16 m and 16 bytes of nibbles, w = d q + m.
    Q4_1,
    /// ggml type 8: 32 weights as f16 d and 32 int8s, w = d q.
    Q8_0,
}

/// Weights per block of the ggml block formats (QK4_0, QK4_1, QK8_0).
pub(crate) const BLOCK: u64 = 32;

impl Encoding {
    /// ggml_type ids (ggml.h) of the encodings this bench can fill.
    fn from_ggml(id: u32) -> Option<Self> {
        match id {
            0 => Some(Self::F32),
            1 => Some(Self::F16),
            2 => Some(Self::Q4_0),
            3 => Some(Self::Q4_1),
            8 => Some(Self::Q8_0),
            30 => Some(Self::Bf16),
            _ => None,
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

    /// Bytes of one block (one value for the plain encodings).
    pub(crate) fn block_bytes(self) -> u64 {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::I64 => 8,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }

    /// Values per block.
    pub(crate) fn block_values(self) -> u64 {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => BLOCK,
            _ => 1,
        }
    }

    /// Bytes holding `elements` values; `None` when they do not fill whole blocks.
    fn byte_len(self, elements: u64) -> Option<u64> {
        if !elements.is_multiple_of(self.block_values()) {
            return None;
        }
        (elements / self.block_values()).checked_mul(self.block_bytes())
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

#[derive(Deserialize)]
struct SafetensorsEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

fn safetensors(bytes: &[u8]) -> anyhow::Result<Layout> {
    let n = u64::from_le_bytes(bytes.get(..8).context("shorter than 8 bytes")?.try_into()?);
    ensure!(n <= MAX_HEADER_BYTES - 8 && 8 + n <= bytes.len() as u64, "header of {n} bytes does not fit");
    let header_len = 8 + n;
    let header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_len as usize]).context("header is not JSON")?;
    let mut tensors = Vec::new();
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let e: SafetensorsEntry = serde_json::from_value(value).with_context(|| format!("tensor {name}"))?;
        let encoding = Encoding::from_safetensors(&e.dtype)
            .with_context(|| format!("tensor {name}: dtype {} has no generator", e.dtype))?;
        let elements = e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let [start, end] = e.data_offsets;
        let len = elements.and_then(|n| encoding.byte_len(n));
        ensure!(
            start <= end && len == Some(end - start),
            "tensor {name}: offsets {start}..{end} do not match shape {:?}",
            e.shape
        );
        let row_len = e.shape.last().copied().unwrap_or(1);
        tensors.push(TensorSpan { name, encoding, row_len, start: header_len + start, len: end - start });
    }
    Ok(Layout { header_len, tensors })
}

/// The data section starts at a multiple of this unless `general.alignment` says otherwise.
const GGUF_DEFAULT_ALIGNMENT: u64 = 32;

fn gguf(bytes: &[u8]) -> anyhow::Result<Layout> {
    let mut r = Reader { bytes, pos: 0 };
    ensure!(r.take(4)? == b"GGUF", "not a GGUF file");
    let version = r.u32()?;
    ensure!(version == 2 || version == 3, "GGUF version {version}; versions 2 and 3 are read");
    let (tensor_count, kv_count) = (r.u64()?, r.u64()?);
    let mut alignment = GGUF_DEFAULT_ALIGNMENT;
    for i in 0..kv_count {
        let key = r.string().with_context(|| format!("metadata entry {i}"))?;
        let ty = r.u32()?;
        if key == "general.alignment" {
            alignment = match ty {
                4 => u64::from(r.u32()?),
                10 => r.u64()?,
                _ => bail!("general.alignment of type {ty}"),
            };
            ensure!(alignment.is_power_of_two(), "general.alignment {alignment}");
        } else {
            r.skip_value(ty, 0).with_context(|| format!("metadata {key}"))?;
        }
    }
    let mut infos = Vec::new();
    for i in 0..tensor_count {
        let name = r.string().with_context(|| format!("tensor info {i}"))?;
        let n_dims = r.u32()?;
        ensure!((1..=4).contains(&n_dims), "tensor {name}: {n_dims} dimensions");
        let dims = (0..n_dims).map(|_| r.u64()).collect::<anyhow::Result<Vec<_>>>()?;
        let ty = r.u32()?;
        let offset = r.u64()?;
        infos.push((name, dims, ty, offset));
    }
    let header_len = (r.pos as u64).div_ceil(alignment) * alignment;
    let mut tensors = Vec::new();
    for (name, dims, ty, offset) in infos {
        let encoding = Encoding::from_ggml(ty)
            .with_context(|| format!("tensor {name}: ggml type {ty} has no generator"))?;
        let elements = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let len = elements
            .and_then(|n| encoding.byte_len(n))
            .with_context(|| format!("tensor {name}: dims {dims:?} do not fill {encoding:?} blocks"))?;
        ensure!(offset.is_multiple_of(alignment), "tensor {name}: offset {offset} is not aligned");
        tensors.push(TensorSpan { name, encoding, row_len: dims[0], start: header_len + offset, len });
    }
    Ok(Layout { header_len, tensors })
}

/// A cursor whose reads fail, rather than panic, past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Arrays nest at most this deep; the format needs 2 (array of strings).
const MAX_NESTING: u32 = 4;

impl Reader<'_> {
    fn take(&mut self, n: u64) -> anyhow::Result<&[u8]> {
        let left = (self.bytes.len() - self.pos) as u64;
        ensure!(n <= left, "{n} bytes needed at offset {}: the header ends first", self.pos);
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }

    fn string(&mut self) -> anyhow::Result<String> {
        let n = self.u64()?;
        Ok(String::from_utf8(self.take(n)?.to_vec())?)
    }

    /// Steps over one metadata value of gguf_type `ty`.
    fn skip_value(&mut self, ty: u32, depth: u32) -> anyhow::Result<()> {
        match ty {
            0 | 1 | 7 => self.take(1).map(drop),
            2 | 3 => self.take(2).map(drop),
            4..=6 => self.take(4).map(drop),
            10..=12 => self.take(8).map(drop),
            8 => {
                let n = self.u64()?;
                self.take(n).map(drop)
            }
            9 => {
                ensure!(depth < MAX_NESTING, "arrays nested too deep");
                let elem = self.u32()?;
                let count = self.u64()?;
                for _ in 0..count {
                    self.skip_value(elem, depth + 1)?;
                }
                Ok(())
            }
            t => bail!("unknown value type {t}"),
        }
    }
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
        assert!(err.contains("header ends first"), "{err}");
    }
}
