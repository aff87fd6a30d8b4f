//! Reads the f32 tensors of a `.safetensors` file.
//!
//! The format is an 8-byte little-endian header length, a JSON header mapping names to dtype,
//! shape and byte offsets, then the raw data. Small enough to read here rather than pull in a
//! crate for it. Tensors of other dtypes are skipped: BERT checkpoints carry an int64
//! `embeddings.position_ids` buffer that is just 0..512, which the kernels compute themselves.
//! The header reads on its own too ([`Header`]), for tools that need a file's layout but not
//! its data.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first, as in the file's header.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// The f32 tensors of one file, by name.
#[derive(Debug, Default)]
pub struct Tensors {
    tensors: HashMap<String, Tensor>,
}

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// A header larger than this is a corrupt or hostile file, not a model.
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Bytes per value of the dtypes the safetensors format defines.
pub fn dtype_bytes(dtype: &str) -> Option<u64> {
    match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => Some(1),
        "U16" | "I16" | "F16" | "BF16" => Some(2),
        "U32" | "I32" | "F32" => Some(4),
        "U64" | "I64" | "F64" => Some(8),
        _ => None,
    }
}

/// A safetensors header: the length prefix and the JSON table of tensors. A prefix of the
/// file holding the header suffices to parse it; checks that need the data (every tensor lies
/// inside the file) are [`Tensors::parse`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Absolute offset of the data section: the 8-byte length and the JSON before it.
    pub data_start: u64,
    /// The tensors, in file order (`__metadata__` is not one).
    pub tensors: Vec<TensorEntry>,
}

/// One tensor of a safetensors header, its offsets made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// The tensor's name.
    pub name: String,
    /// Its dtype as the file names it ("F32", "I64", ...).
    pub dtype: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Absolute offset of its first byte in the file.
    pub start: u64,
    /// Absolute offset just past its last byte; checked against the shape where the dtype is
    /// one of [`dtype_bytes`]'.
    pub end: u64,
}

impl Header {
    /// Parses the header at the start of `bytes`; the error is a reason to attach to the
    /// file's path.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let len_bytes: [u8; 8] =
            bytes.get(..8).ok_or("shorter than the 8-byte header length")?.try_into().unwrap_or_default();
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || header_len > (bytes.len() - 8) as u64 {
            return Err(format!("header length {header_len} does not fit the file ({} bytes)", bytes.len()));
        }
        let data_start = 8 + header_len;
        let table: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..data_start as usize])
                .map_err(|e| format!("header is not JSON: {e}"))?;

        let mut tensors = Vec::with_capacity(table.len());
        for (name, value) in table {
            if name == "__metadata__" {
                continue;
            }
            let entry: Entry = serde_json::from_value(value).map_err(|e| format!("tensor {name}: {e}"))?;
            let count = entry
                .shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| format!("tensor {name}: shape {:?} overflows", entry.shape))?;
            let [start, end] = entry.data_offsets;
            let shape_bytes = dtype_bytes(&entry.dtype).map(|b| (count as u64).saturating_mul(b));
            let matches_shape = start <= end && shape_bytes.is_none_or(|b| b == end - start);
            // With start <= end, an end that does not overflow is a start that does not either.
            let Some(abs_end) = data_start.checked_add(end).filter(|_| matches_shape) else {
                return Err(format!(
                    "tensor {name}: offsets {start}..{end} do not match shape {:?}",
                    entry.shape
                ));
            };
            let (dtype, shape, start) = (entry.dtype, entry.shape, data_start + start);
            tensors.push(TensorEntry { name, dtype, shape, start, end: abs_end });
        }
        // The JSON object has no order worth keeping; the data has one, the same every time.
        tensors.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
        Ok(Self { data_start, tensors })
    }
}

impl Tensors {
    /// Reads and parses the file at `path`; a missing file is [`Error::ModelMissing`].
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::ModelMissing { path: path.to_owned() });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::parse(&bytes).map_err(|reason| Error::InvalidModelFile { path: path.to_owned(), reason })
    }

    /// Parses an in-memory file; the error is a reason to attach to the file's path.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let header = Header::parse(bytes)?;
        let data = &bytes[header.data_start as usize..];
        let mut tensors = HashMap::new();
        for entry in header.tensors {
            if entry.dtype != "F32" {
                continue;
            }
            // Relative to the data section again, as the file has them and errors name them.
            let (start, end) =
                ((entry.start - header.data_start) as usize, (entry.end - header.data_start) as usize);
            if end > data.len() {
                return Err(format!(
                    "tensor {}: offsets {start}..{end} do not match shape {:?} within {} data bytes",
                    entry.name,
                    entry.shape,
                    data.len()
                ));
            }
            let values = data[start..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(entry.name, Tensor { shape: entry.shape, data: values });
        }
        Ok(Self { tensors })
    }

    /// Removes and returns tensor `name`, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::Tensor { name: name.into(), reason: "missing (or not f32)".into() })?;
        if t.shape != shape {
            return Err(Error::Tensor {
                name: name.into(),
                reason: format!("shape {:?}, expected {shape:?}", t.shape),
            });
        }
        Ok(t.data)
    }

    /// The tensor `name`, if the file had it as f32.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Number of f32 tensors still held.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no f32 tensors are left.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_f32_and_skips_int64_tensors() {
        let mut data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        data.extend_from_slice(&7i64.to_le_bytes());
        let header = r#"{"__metadata__":{"format":"pt"},
            "w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
            "embeddings.position_ids":{"dtype":"I64","shape":[1,1],"data_offsets":[8,16]}}"#;
        let mut t = Tensors::parse(&file(header, &data)).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t.get("embeddings.position_ids").is_none());
        assert_eq!(t.take("w", &[2]).unwrap(), vec![1.5, -2.0]);
    }

    #[test]
    fn rejects_a_shape_that_disagrees_with_the_offsets() {
        let data = [0u8; 8];
        let header = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        let err = Tensors::parse(&file(header, &data)).unwrap_err();
        assert!(err.contains("do not match shape"), "{err}");
    }

    #[test]
    fn rejects_truncated_files() {
        assert!(Tensors::parse(&[1, 2, 3]).unwrap_err().contains("shorter"));
        let mut bytes = 1000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(Tensors::parse(&bytes).unwrap_err().contains("does not fit"));
    }

    #[test]
    fn the_header_prefix_alone_gives_the_same_tensor_places_as_the_whole_file() {
        let mut data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        data.extend_from_slice(&7i64.to_le_bytes());
        data.extend_from_slice(&[0u8; 3]);
        let header_json = r#"{"__metadata__":{"format":"pt"},
            "w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
            "ids":{"dtype":"I64","shape":[1,1],"data_offsets":[8,16]},
            "odd":{"dtype":"X9","shape":[1],"data_offsets":[16,19]}}"#;
        let bytes = file(header_json, &data);
        let whole = Header::parse(&bytes).unwrap();
        assert_eq!(whole.data_start, 8 + header_json.len() as u64);
        let prefix = Header::parse(&bytes[..whole.data_start as usize]).unwrap();
        assert_eq!(prefix, whole);

        let places: Vec<_> =
            prefix.tensors.iter().map(|t| (&t.name[..], &t.dtype[..], t.start, t.end)).collect();
        let at = prefix.data_start;
        assert_eq!(
            places,
            [("w", "F32", at, at + 8), ("ids", "I64", at + 8, at + 16), ("odd", "X9", at + 16, at + 19)]
        );
        // The same places the whole-file reader reads its f32 tensor from.
        let w = Tensors::parse(&bytes).unwrap().get("w").unwrap().data.clone();
        let start = places[0].2 as usize;
        let from_place: Vec<f32> = bytes[start..start + 8]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(w, from_place);

        // A dtype whose size is known is checked against its shape, f32 or not.
        let lying = file(r#"{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}}"#, &[0u8; 8]);
        let err = Header::parse(&lying).unwrap_err();
        assert!(err.contains("do not match shape"), "{err}");
    }

    #[test]
    fn take_checks_the_expected_shape() {
        let data: Vec<u8> = [0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let header = r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let mut t = Tensors::parse(&file(header, &data)).unwrap();
        let err = t.take("w", &[4]).unwrap_err().to_string();
        assert!(err.contains("expected [4]"), "{err}");
    }
}
