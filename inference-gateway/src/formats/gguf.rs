//! A reader for GGUF v3, the file format of llama.cpp: header, metadata key/values (every
//! type, arrays included), tensor infos and the aligned tensor data, plus dequantisation of
//! the block formats SmolLM2 uses (F32, Q4_1, Q8_0). Every offset and length is checked
//! against the file: a truncated or hostile file is an error, never a panic or a huge
//! allocation. The header reads on its own too ([`Header`]), for tools that need a file's
//! layout but not its data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// "GGUF" read as a little-endian u32.
const GGUF_MAGIC: u32 = u32::from_le_bytes(*b"GGUF");
/// The data section starts at a multiple of this unless `general.alignment` says otherwise.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Weights per block in Q4_0, Q4_1 and Q8_0 (ggml's QK4_0, QK4_1, QK8_0).
pub const BLOCK: usize = 32;
/// Bytes per Q4_0 block: f16 d, 16 bytes of nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 18;
/// Bytes per Q4_1 block: f16 d, f16 m, 16 bytes of nibbles.
pub const Q4_1_BLOCK_BYTES: usize = 20;
/// Bytes per Q8_0 block: f16 d, 32 int8s.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// A metadata value, as typed in the file (gguf_type).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An unsigned 8-bit integer (gguf_type 0).
    U8(u8),
    /// A signed 8-bit integer (gguf_type 1).
    I8(i8),
    /// An unsigned 16-bit integer (gguf_type 2).
    U16(u16),
    /// A signed 16-bit integer (gguf_type 3).
    I16(i16),
    /// An unsigned 32-bit integer (gguf_type 4).
    U32(u32),
    /// A signed 32-bit integer (gguf_type 5).
    I32(i32),
    /// A 32-bit float (gguf_type 6).
    F32(f32),
    /// A boolean byte (gguf_type 7).
    Bool(bool),
    /// A length-prefixed UTF-8 string (gguf_type 8).
    String(String),
    /// An array of values of one type (gguf_type 9).
    Array(Vec<Value>),
    /// An unsigned 64-bit integer (gguf_type 10).
    U64(u64),
    /// A signed 64-bit integer (gguf_type 11).
    I64(i64),
    /// A 64-bit float (gguf_type 12).
    F64(f64),
}

impl Value {
    /// Any unsigned or non-negative signed integer, widened.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A float of either width, as f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Self::F32(v) => Some(v),
            Self::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of an array value.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// The ggml types whose storage this module knows (ggml_type ids): those [`TensorType`]
/// dequantises and the others small models ship in, so that a file's layout can be read in
/// full even where its data cannot be. Tensors of other types are kept by their id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum GgmlType {
    /// Little-endian f32s.
    F32 = 0,
    /// Little-endian IEEE halves.
    F16 = 1,
    /// 32-weight blocks of 4-bit values with an f16 scale, 18 bytes.
    Q4_0 = 2,
    /// 32-weight blocks of 4-bit values with an f16 scale and an f16 minimum, 20 bytes.
    Q4_1 = 3,
    /// 32-weight blocks of int8 values with an f16 scale, 34 bytes.
    Q8_0 = 8,
    /// Little-endian bfloat16s.
    Bf16 = 30,
}

impl GgmlType {
    const ALL: [Self; 6] = [Self::F32, Self::F16, Self::Q4_0, Self::Q4_1, Self::Q8_0, Self::Bf16];

    /// The type of ggml_type id `id`, if its storage is known here.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|ty| ty.id() == id)
    }

    /// Its ggml_type id (ggml.h).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Values per block (1 for the plain types).
    pub fn block_values(self) -> u64 {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => BLOCK as u64,
            Self::F32 | Self::F16 | Self::Bf16 => 1,
        }
    }

    /// Bytes per block (of one value for the plain types).
    pub fn block_bytes(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::Q4_0 => Q4_0_BLOCK_BYTES as u64,
            Self::Q4_1 => Q4_1_BLOCK_BYTES as u64,
            Self::Q8_0 => Q8_0_BLOCK_BYTES as u64,
        }
    }

    /// Bytes holding `elements` values, or `None` when they do not fill whole blocks.
    pub fn byte_len(self, elements: u64) -> Option<u64> {
        if !elements.is_multiple_of(self.block_values()) {
            return None;
        }
        (elements / self.block_values()).checked_mul(self.block_bytes())
    }
}

/// The tensor encodings this reader can dequantise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// Plain little-endian f32s (ggml type 0).
    F32,
    /// 32-weight blocks of 4-bit values with an f16 scale and an f16 minimum, 20 bytes (ggml type 3).
    Q4_1,
    /// 32-weight blocks of int8 values with an f16 scale, 34 bytes (ggml type 8).
    Q8_0,
}

impl TensorType {
    fn from_ggml(ty: GgmlType) -> Option<Self> {
        match ty {
            GgmlType::F32 => Some(Self::F32),
            GgmlType::Q4_1 => Some(Self::Q4_1),
            GgmlType::Q8_0 => Some(Self::Q8_0),
            GgmlType::F16 | GgmlType::Q4_0 | GgmlType::Bf16 => None,
        }
    }

    /// Its storage, as ggml names it.
    pub fn ggml(self) -> GgmlType {
        match self {
            Self::F32 => GgmlType::F32,
            Self::Q4_1 => GgmlType::Q4_1,
            Self::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// Bytes holding `elements` values, or `None` when they do not fill whole blocks.
    pub fn byte_len(self, elements: u64) -> Option<u64> {
        self.ggml().byte_len(elements)
    }
}

/// Where a tensor lives in the file and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// ggml order: `dims[0]` is the innermost (a matrix [out, in] has dims [in, out]).
    pub dims: Vec<u64>,
    /// How its data is encoded.
    pub ty: TensorType,
    /// Absolute offset of the first byte in the file.
    start: usize,
    len: usize,
}

impl TensorInfo {
    /// Number of values: the product of the dims.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A GGUF header: everything before the tensor data. A prefix of the file holding the
/// header suffices to parse it, so a tool can read a file's layout without its data; checks
/// that need the whole file (every tensor lies inside it) are [`Gguf::parse`]'s.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// GGUF format version (always 3: others are refused).
    pub version: u32,
    /// The metadata key/values.
    pub metadata: HashMap<String, Value>,
    /// The tensor infos, in the header's order.
    pub tensors: Vec<TensorEntry>,
    /// Absolute offset of the data section: the end of the tensor infos, aligned.
    pub data_start: u64,
}

/// One tensor info of a GGUF header, its offset made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// The tensor's name.
    pub name: String,
    /// ggml order: `dims[0]` is the innermost.
    pub dims: Vec<u64>,
    /// Its encoding, or the ggml_type id of one whose storage is not known here.
    pub ty: std::result::Result<GgmlType, u32>,
    /// Absolute offset of its first byte in the file, aligned.
    pub start: u64,
    /// Bytes of its data: `Some` exactly when `ty` is known.
    pub len: Option<u64>,
}

impl TensorEntry {
    /// Its ggml_type id, known type or not.
    pub fn ggml_id(&self) -> u32 {
        match self.ty {
            Ok(ty) => ty.id(),
            Err(id) => id,
        }
    }
}

impl Header {
    /// Parses the header at the start of `bytes`; the error is a reason to attach to the
    /// file's path.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.u32()?;
        if magic != GGUF_MAGIC {
            return Err(format!("not a GGUF file (magic {magic:#010x})"));
        }
        let version = r.u32()?;
        if version != 3 {
            return Err(format!("GGUF version {version}; only version 3 is supported"));
        }
        let (tensor_count, kv_count) = (r.u64()?, r.u64()?);

        let mut metadata = HashMap::new();
        for i in 0..kv_count {
            let (key, value) = (|| Ok::<_, String>((r.string()?, r.value(0)?)))()
                .map_err(|e| format!("metadata entry {i}: {e}"))?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(format!("general.alignment {v:?} is not a power of two")),
            },
        };

        let mut raw = Vec::new();
        for i in 0..tensor_count {
            let info = (|| {
                let name = r.string()?;
                let n_dims = r.u32()?;
                if n_dims == 0 || n_dims > 4 {
                    return Err(format!("{name}: {n_dims} dimensions"));
                }
                let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
                let ty_id = r.u32()?;
                let offset = r.u64()?;
                Ok((name, dims, ty_id, offset))
            })()
            .map_err(|e| format!("tensor info {i}: {e}"))?;
            raw.push(info);
        }
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;

        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, ty_id, offset) in raw {
            let start = data_start.checked_add(offset);
            let Some(ty) = GgmlType::from_id(ty_id) else {
                let start = start.ok_or_else(|| format!("tensor {name}: offset {offset} overflows"))?;
                tensors.push(TensorEntry { name, dims, ty: Err(ty_id), start, len: None });
                continue;
            };
            let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let len = elements.and_then(|e| ty.byte_len(e));
            let (Some(len), Some(start)) = (len, start) else {
                return Err(format!("tensor {name}: dims {dims:?} do not fit {ty:?} blocks"));
            };
            if !offset.is_multiple_of(alignment) {
                return Err(format!("tensor {name}: offset {offset} is not a multiple of {alignment}"));
            }
            tensors.push(TensorEntry { name, dims, ty: Ok(ty), start, len: Some(len) });
        }
        Ok(Self { version, metadata, tensors, data_start })
    }
}

/// A whole GGUF file in memory, parsed.
pub struct Gguf {
    path: PathBuf,
    bytes: Vec<u8>,
    /// GGUF format version from the header (always 3: others are refused).
    pub version: u32,
    metadata: HashMap<String, Value>,
    /// Supported tensors, and the ggml type id of the others.
    tensors: HashMap<String, std::result::Result<TensorInfo, u32>>,
}

impl std::fmt::Debug for Gguf {
    // The bytes are the whole file: name it instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf").field("path", &self.path).field("tensors", &self.tensors.len()).finish()
    }
}

impl Gguf {
    /// Reads the whole file at `path` into memory and parses it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Self::parse(path.into(), bytes)
    }

    /// Parses `bytes`; `path` only names the file in errors.
    pub fn parse(path: PathBuf, bytes: Vec<u8>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModelFile { path: path.clone(), reason };
        let header = Header::parse(&bytes).map_err(invalid)?;
        let mut tensors = HashMap::new();
        for entry in header.tensors {
            // Encodings this reader cannot dequantise are kept by their ggml id rather than
            // failing the file: a loader asking for one gets a clear "unsupported" error from `tensor`.
            let supported = entry.ty.ok().and_then(TensorType::from_ggml);
            let (Some(ty), Some(len)) = (supported, entry.len) else {
                let id = entry.ggml_id();
                tensors.insert(entry.name, Err(id));
                continue;
            };
            let start = entry.start;
            if start.checked_add(len).is_none_or(|end| end > bytes.len() as u64) {
                return Err(invalid(format!(
                    "tensor {}: {len} bytes at {start} lie outside the file",
                    entry.name
                )));
            }
            let info = TensorInfo { dims: entry.dims, ty, start: start as usize, len: len as usize };
            tensors.insert(entry.name, Ok(info));
        }
        Ok(Self { path, bytes, version: header.version, metadata: header.metadata, tensors })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata value under `key`, e.g. `llama.block_count`, if present.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A metadata value that must be there, with the error naming the key when it is not.
    pub fn require(&self, key: &str) -> Result<&Value> {
        self.metadata.get(key).ok_or_else(|| self.invalid(format!("metadata {key} is missing")))
    }

    /// A metadata integer that must be there and non-negative.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| self.invalid(format!("metadata {key} is {v:?}, not an integer")))
    }

    /// A metadata float that must be there.
    pub fn require_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| self.invalid(format!("metadata {key} is {v:?}, not a float")))
    }

    /// A metadata string that must be there.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.invalid(format!("metadata {key} is not a string")))
    }

    /// A string array (e.g. the tokenizer's tokens).
    pub fn require_strings(&self, key: &str) -> Result<Vec<&str>> {
        let v = self.require(key)?;
        v.as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .ok_or_else(|| self.invalid(format!("metadata {key} is not an array of strings")))
    }

    /// Whether the file has a tensor called `name`, of a supported type or not.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name`, checked to have `dims` (ggml order, innermost first).
    pub fn tensor(&self, name: &str, dims: &[u64]) -> Result<(&TensorInfo, &[u8])> {
        let err = |reason: String| Error::Tensor { name: name.into(), reason };
        let info = match self.tensors.get(name) {
            Some(Ok(info)) => info,
            Some(Err(ty)) => {
                return Err(err(format!("ggml type {ty} is not supported (only F32, Q4_1, Q8_0)")));
            }
            None => return Err(err(format!("missing from {}", self.path.display()))),
        };
        if info.dims != dims {
            return Err(err(format!("dims {:?}, expected {dims:?}", info.dims)));
        }
        Ok((info, &self.bytes[info.start..info.start + info.len]))
    }

    /// The tensor `name` as f32s, dequantised.
    pub fn tensor_f32(&self, name: &str, dims: &[u64]) -> Result<Vec<f32>> {
        let (info, bytes) = self.tensor(name, dims)?;
        Ok(dequantize(info.ty, bytes))
    }

    fn invalid(&self, reason: String) -> Error {
        Error::InvalidModelFile { path: self.path.clone(), reason }
    }
}

/// A cursor over the file whose reads fail, rather than panic, past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Arrays and strings nest at most this deep; the format needs 2 (array of strings).
const MAX_NESTING: u32 = 4;

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return Err(format!("{n} bytes needed at offset {}, the file ends first", self.pos));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u64()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("string at {} is not UTF-8", self.pos))
    }

    fn value(&mut self, depth: u32) -> Result<Value, String> {
        let ty = self.u32()?;
        self.value_of(ty, depth)
    }

    fn value_of(&mut self, ty: u32, depth: u32) -> Result<Value, String> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array()?)),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("bool byte {b}")),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err("arrays nested too deep".into());
                }
                let elem = self.u32()?;
                let count = self.u64()?;
                // Every element takes at least one byte: a count beyond what is left is a lie,
                // and must not become an allocation.
                if count > (self.bytes.len() - self.pos) as u64 {
                    return Err(format!("array of {count} elements is longer than the file"));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value_of(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            t => return Err(format!("unknown value type {t}")),
        })
    }
}

/// IEEE half to single precision, exactly (subnormals, infinities and NaN included).
pub fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// One Q4_1 block's 32 weights: w = d * q + m, the low nibbles of the 16 bytes being
/// weights 0..15 and the high nibbles weights 16..31 (ggml's dequantize_row_q4_1).
pub fn dequantize_q4_1_block(block: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(block, 0), f16_at(block, 2));
    for (j, &q) in block[4..Q4_1_BLOCK_BYTES].iter().enumerate() {
        out[j] = d * f32::from(q & 0x0f) + m;
        out[j + 16] = d * f32::from(q >> 4) + m;
    }
}

/// One Q8_0 block's 32 weights: w = d * q.
pub fn dequantize_q8_0_block(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..Q8_0_BLOCK_BYTES]) {
        *o = d * f32::from(q as i8);
    }
}

/// A whole tensor's bytes (whole blocks, as [`Gguf::tensor`] guarantees) as f32s.
pub fn dequantize(ty: TensorType, bytes: &[u8]) -> Vec<f32> {
    match ty {
        TensorType::F32 => {
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        TensorType::Q4_1 => blocks(bytes, Q4_1_BLOCK_BYTES, dequantize_q4_1_block),
        TensorType::Q8_0 => blocks(bytes, Q8_0_BLOCK_BYTES, dequantize_q8_0_block),
    }
}

fn blocks(bytes: &[u8], block_bytes: usize, f: fn(&[u8], &mut [f32])) -> Vec<f32> {
    let mut out = vec![0.0f32; bytes.len() / block_bytes * BLOCK];
    for (b, o) in bytes.chunks_exact(block_bytes).zip(out.chunks_exact_mut(BLOCK)) {
        f(b, o);
    }
    out
}

/// Builds GGUF files in memory: for tests of this reader and of the model loaders.
#[doc(hidden)]
pub mod writer {
    use super::Value;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.extend(x.to_le_bytes()),
            Value::U16(x) => out.extend(x.to_le_bytes()),
            Value::I16(x) => out.extend(x.to_le_bytes()),
            Value::U32(x) => out.extend(x.to_le_bytes()),
            Value::I32(x) => out.extend(x.to_le_bytes()),
            Value::F32(x) => out.extend(x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => string(out, s),
            Value::Array(items) => {
                out.extend(items.first().map_or(4, type_id).to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|i| value(out, i));
            }
            Value::U64(x) => out.extend(x.to_le_bytes()),
            Value::I64(x) => out.extend(x.to_le_bytes()),
            Value::F64(x) => out.extend(x.to_le_bytes()),
        }
    }

    /// A GGUF v3 file with `metadata` and `tensors` (name, ggml dims, ggml type id, raw bytes),
    /// data aligned to 32 bytes.
    pub fn gguf(metadata: &[(&str, Value)], tensors: &[(&str, &[u64], u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            string(&mut out, k);
            out.extend(type_id(v).to_le_bytes());
            value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut data = Vec::new();
        for (name, dims, ty, bytes) in tensors {
            string(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            data.extend(*bytes);
            while data.len() % 32 != 0 {
                data.push(0);
            }
            offset = data.len() as u64;
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        out.extend(data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::writer::gguf;
    use super::*;

    fn parse(bytes: Vec<u8>) -> Result<Gguf> {
        Gguf::parse("test.gguf".into(), bytes)
    }

    fn f16(v: f32) -> [u8; 2] {
        half::f16::from_f32(v).to_bits().to_le_bytes()
    }

    #[test]
    fn reads_metadata_of_every_type_and_tensors() {
        let f32_data: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let meta = [
            ("a.u8", Value::U8(7)),
            ("a.i8", Value::I8(-7)),
            ("a.u16", Value::U16(700)),
            ("a.i16", Value::I16(-700)),
            ("a.u32", Value::U32(70_000)),
            ("a.i32", Value::I32(-70_000)),
            ("a.f32", Value::F32(0.5)),
            ("a.bool", Value::Bool(true)),
            ("a.str", Value::String("héllo".into())),
            ("a.arr", Value::Array(vec![Value::String("x".into()), Value::String("yz".into())])),
            ("a.u64", Value::U64(1 << 40)),
            ("a.i64", Value::I64(-(1 << 40))),
            ("a.f64", Value::F64(0.125)),
            ("a.nested", Value::Array(vec![Value::Array(vec![Value::I32(1), Value::I32(2)])])),
        ];
        let file = parse(gguf(&meta, &[("t", &[2, 2], 0, &f32_data)])).unwrap();
        assert_eq!(file.version, 3);
        for (k, v) in &meta {
            assert_eq!(file.metadata(k), Some(v), "{k}");
        }
        assert_eq!(file.require_u64("a.u32").unwrap(), 70_000);
        assert_eq!(file.require_strings("a.arr").unwrap(), vec!["x", "yz"]);
        assert!(file.require_u64("a.i8").is_err());
        assert_eq!(file.tensor_f32("t", &[2, 2]).unwrap(), vec![1.5, -2.0, 0.25, 8.0]);
        assert!(file.tensor("t", &[4]).unwrap_err().to_string().contains("dims [2, 2]"));
        assert!(file.tensor("missing", &[4]).is_err());
    }

    #[test]
    fn honours_general_alignment() {
        let mut bytes =
            gguf(&[("general.alignment", Value::U32(64))], &[("t", &[1], 0, &2.0f32.to_le_bytes())]);
        // The writer aligned the data to 32; move it to the next multiple of 64.
        let data_at = bytes.len() - 32;
        if !data_at.is_multiple_of(64) {
            bytes.splice(data_at..data_at, [0u8; 32]);
        }
        assert_eq!(parse(bytes).unwrap().tensor_f32("t", &[1]).unwrap(), vec![2.0]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let q = [0u8; Q4_1_BLOCK_BYTES];
        let bytes = gguf(
            &[("k", Value::Array(vec![Value::String("tok".into()); 3])), ("n", Value::U32(1))],
            &[("w", &[32], 3, &q)],
        );
        assert!(parse(bytes.clone()).is_ok());
        // The writer pads the last tensor to 32 bytes; cutting into that padding is harmless.
        for cut in 0..bytes.len() - (32 - Q4_1_BLOCK_BYTES) {
            let mut short = bytes.clone();
            short.truncate(cut);
            assert!(parse(short).is_err(), "truncated at {cut}");
        }
    }

    #[test]
    fn rejects_bad_magic_version_and_lying_lengths() {
        let good = gguf(&[("k", Value::U32(1))], &[]);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(parse(bad).unwrap_err().to_string().contains("not a GGUF file"));
        let mut v2 = good.clone();
        v2[4] = 2;
        assert!(parse(v2).unwrap_err().to_string().contains("version 2"));
        // An array that claims 2^60 strings must fail before allocating.
        let mut huge = gguf(&[("k", Value::Array(vec![Value::U8(1)]))], &[]);
        let count_at = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 4;
        huge[count_at..count_at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(parse(huge).unwrap_err().to_string().contains("longer than the file"));
        // A tensor whose data lies past the end of the file.
        let mut past = gguf(&[], &[("t", &[1], 0, &1.0f32.to_le_bytes())]);
        past.truncate(past.len() - 32);
        assert!(parse(past).unwrap_err().to_string().contains("outside the file"));
        // A quantised tensor whose element count is not a whole number of blocks.
        assert!(parse(gguf(&[], &[("t", &[31], 3, &[0u8; 20])])).unwrap_err().to_string().contains("blocks"));
    }

    #[test]
    fn the_header_prefix_alone_gives_the_same_tensor_places_as_the_whole_file() {
        let (q4, q8, f32s) = ([0u8; Q4_1_BLOCK_BYTES * 2], [0u8; Q8_0_BLOCK_BYTES], [0u8; 12]);
        let bytes = gguf(
            &[("general.architecture", Value::String("llama".into()))],
            &[
                ("q4", &[32, 2], 3, &q4),
                ("q8", &[32], 8, &q8),
                ("f16", &[3], 1, &[0u8; 6]),
                ("unknown", &[32], 12, &[0u8; 32]),
                ("f32", &[3], 0, &f32s),
            ],
        );
        let whole = parse(bytes.clone()).unwrap();
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.data_start % DEFAULT_ALIGNMENT, 0);
        let prefix = Header::parse(&bytes[..header.data_start as usize]).unwrap();
        assert_eq!(prefix, header);
        assert_eq!(prefix.metadata.len(), 1);

        let names: Vec<&str> = prefix.tensors.iter().map(|t| &t.name[..]).collect();
        assert_eq!(names, ["q4", "q8", "f16", "unknown", "f32"]);
        for entry in &prefix.tensors {
            match whole.tensors[&entry.name] {
                Ok(ref info) => {
                    assert_eq!((entry.start, entry.len), (info.start as u64, Some(info.len as u64)));
                    assert_eq!((entry.ty, &entry.dims), (Ok(info.ty.ggml()), &info.dims));
                }
                Err(id) => assert_eq!(entry.ggml_id(), id, "{}", entry.name),
            }
        }
        // Known storage, unsupported data: placed all the same. Unknown storage: kept by id.
        let f16 = &prefix.tensors[2];
        assert_eq!((f16.ty, f16.len), (Ok(GgmlType::F16), Some(6)));
        assert_eq!((prefix.tensors[3].ty, prefix.tensors[3].len), (Err(12), None));
        assert_eq!(prefix.tensors[0].start, prefix.data_start);
        assert_eq!(prefix.tensors[1].start, prefix.data_start + 64);

        // Cut inside the tensor infos (before the alignment padding, at most 31 bytes), it is truncated.
        let short = Header::parse(&bytes[..header.data_start as usize - 33]).unwrap_err();
        assert!(short.contains("ends first"), "{short}");
    }

    #[test]
    fn unsupported_tensor_types_fail_only_when_asked_for() {
        let file = parse(gguf(&[], &[("f16", &[2], 1, &[0u8; 4])])).unwrap();
        assert!(file.tensor("f16", &[2]).unwrap_err().to_string().contains("not supported"));
    }

    #[test]
    fn f16_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x8001), -5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn q4_1_block_dequantises_low_nibbles_first() {
        let mut block = Vec::new();
        block.extend(f16(0.5));
        block.extend(f16(-1.0));
        // Byte j holds weight j in its low nibble and weight j + 16 in its high nibble.
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let file = parse(gguf(&[], &[("w", &[32], 3, &block)])).unwrap();
        let w = file.tensor_f32("w", &[32]).unwrap();
        let expected: Vec<f32> = (0..16)
            .map(|j| 0.5 * j as f32 - 1.0)
            .chain((0..16).map(|j| 0.5 * (15 - j) as f32 - 1.0))
            .collect();
        assert_eq!(w, expected);
        assert_eq!((w[0], w[15], w[16], w[31]), (-1.0, 6.5, 6.5, -1.0));
    }

    #[test]
    fn q8_0_block_dequantises_signed_bytes() {
        let mut block = Vec::new();
        block.extend(f16(0.25));
        block.extend((0..32).map(|j: i32| (j * 8 - 128) as i8 as u8));
        let file = parse(gguf(&[], &[("e", &[32], 8, &block)])).unwrap();
        let w = file.tensor_f32("e", &[32]).unwrap();
        assert_eq!(w, (0..32).map(|j| 0.25 * (j * 8 - 128) as f32).collect::<Vec<_>>());
        assert_eq!((w[0], w[16], w[31]), (-32.0, 0.0, 30.0));
    }
}
