//! Safetensors checkpoints, read tensor by tensor: one file or several shards, in memory, on
//! disk (native) or in a JS buffer (browser). Only the headers are parsed up front; a tensor's
//! bytes are read when it is asked for, so loading a model holds about one tensor in host memory.
//!
//! The header is parsed and checked here (not by the `safetensors` crate) so that every
//! malformed file gets a precise error: header length, JSON, dtype, shape, offsets.

use crate::error::{Error, Result};
use crate::quant::{QFormat, QMatrix, GROUP};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `Send + Sync` natively (models load on worker threads); nothing on wasm (JS buffers).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// Random access to the bytes of one file.
pub trait ByteSource: MaybeSync {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `len` bytes from `offset` (the caller checked the range).
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>>;
}

impl ByteSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(&self[offset as usize..offset as usize + len]))
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(&self[offset as usize..offset as usize + len]))
    }
}

impl<T: ByteSource + ?Sized> ByteSource for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        (**self).read(offset, len)
    }
}

/// A file on disk, read by range.
#[cfg(not(target_arch = "wasm32"))]
pub struct FileSource {
    path: String,
    file: std::sync::Mutex<std::fs::File>,
    len: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl FileSource {
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let err = |e: std::io::Error| Error::File { path: path.display().to_string(), message: e.to_string() };
        let file = std::fs::File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        Ok(FileSource { path: path.display().to_string(), file: std::sync::Mutex::new(file), len })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        use std::io::{Read, Seek, SeekFrom};
        let err = |e: std::io::Error| Error::File { path: self.path.clone(), message: e.to_string() };
        let mut file = self.file.lock().map_err(|_| Error::File { path: self.path.clone(), message: "lock".into() })?;
        file.seek(SeekFrom::Start(offset)).map_err(err)?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf).map_err(err)?;
        Ok(Cow::Owned(buf))
    }
}

/// Element types of safetensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
    F8E4M3,
    F8E5M2,
}

/// The names safetensors uses, in [`Dtype`] order.
const DTYPE_NAMES: [(&str, Dtype); 15] = [
    ("F64", Dtype::F64),
    ("F32", Dtype::F32),
    ("F16", Dtype::F16),
    ("BF16", Dtype::BF16),
    ("I64", Dtype::I64),
    ("I32", Dtype::I32),
    ("I16", Dtype::I16),
    ("I8", Dtype::I8),
    ("U8", Dtype::U8),
    ("U16", Dtype::U16),
    ("U32", Dtype::U32),
    ("U64", Dtype::U64),
    ("BOOL", Dtype::Bool),
    ("F8_E4M3", Dtype::F8E4M3),
    ("F8_E5M2", Dtype::F8E5M2),
];

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        DTYPE_NAMES.iter().find(|(n, _)| *n == s).map(|&(_, d)| d)
    }
    /// The safetensors name (`"F32"`, `"BF16"`, …).
    pub fn name(self) -> &'static str {
        DTYPE_NAMES.iter().find(|(_, d)| *d == self).map_or("?", |&(n, _)| n)
    }
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool | Dtype::F8E4M3 | Dtype::F8E5M2 => 1,
        }
    }
}

/// Where a tensor lives.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    shard: usize,
    /// Absolute byte range in its shard's file.
    start: u64,
    len: usize,
}

/// One file of a checkpoint.
pub type ShardSource<'a> = (String, Box<dyn ByteSource + 'a>);

struct Shard<'a> {
    name: String,
    source: Box<dyn ByteSource + 'a>,
}

/// The tensors of one or more safetensors files.
pub struct Checkpoint<'a> {
    file: String,
    shards: Vec<Shard<'a>>,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

/// Headers above this are rejected (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

impl<'a> Checkpoint<'a> {
    /// Parses one in-memory file; `file` names it in error messages.
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self> {
        Self::from_sources(file, vec![(file.to_string(), Box::new(bytes))])
    }

    /// Parses the headers of `shards` (name, bytes); a tensor name may appear in one shard only.
    pub fn from_sources(label: &str, shards: Vec<ShardSource<'a>>) -> Result<Self> {
        let mut ck = Checkpoint {
            file: label.to_string(),
            shards: Vec::new(),
            tensors: BTreeMap::new(),
            metadata: BTreeMap::new(),
        };
        for (i, (name, source)) in shards.into_iter().enumerate() {
            let (tensors, metadata) = parse_header(&name, source.as_ref(), i)?;
            for (t, info) in tensors {
                if let Some(prev) = ck.tensors.get(&t) {
                    let other = &ck.shards[prev.shard].name;
                    return Err(Error::checkpoint(&name, format!("tensor '{t}' is also in {other}")));
                }
                ck.tensors.insert(t, info);
            }
            ck.metadata.extend(metadata);
            ck.shards.push(Shard { name, source });
        }
        Ok(ck)
    }

    /// The file (or, for shards, the directory) in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// `__metadata__` entries of the header(s).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    fn file_of(&self, info: &TensorInfo) -> &str {
        &self.shards[info.shard].name
    }

    fn lookup(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors.get(name).ok_or_else(|| Error::checkpoint(&self.file, format!("missing tensor '{name}'")))
    }

    /// Shape of `name` (a quantized weight reports its logical shape), or "missing tensor".
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        if let Some(q) = self.quantized(name) {
            let info = self.lookup(&format!("{name}.qweight"))?;
            let rows = info.shape.first().copied().unwrap_or(0);
            let cols = info.shape.get(1).copied().unwrap_or(0) * 8 / q.bits();
            return Ok(vec![rows, cols]);
        }
        Ok(self.lookup(name)?.shape.clone())
    }

    /// The raw bytes of a tensor.
    pub fn bytes(&self, name: &str) -> Result<(TensorInfo, Cow<'_, [u8]>)> {
        let info = self.lookup(name)?.clone();
        let bytes = self.shards[info.shard].source.read(info.start, info.len)?;
        if bytes.len() != info.len {
            return Err(Error::checkpoint(self.file_of(&info), format!("tensor '{name}' could not be read whole")));
        }
        Ok((info, bytes))
    }

    /// Whether the weight `name` is stored, plain or quantized.
    pub fn has_weight(&self, name: &str) -> bool {
        self.contains(name) || self.quantized(name).is_some()
    }

    /// The packed format `name` is stored in, if it was quantized (`{name}.qweight` present).
    pub fn quantized(&self, name: &str) -> Option<QFormat> {
        let info = self.tensors.get(&format!("{name}.qweight"))?;
        Some(if info.dtype == Dtype::I8 { QFormat::Q8 } else { QFormat::Q4 })
    }

    /// The tensor as f32 (dequantized if it is stored quantized), checking its shape (an empty
    /// `shape` means a scalar).
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        if self.quantized(name).is_some() {
            if shape.len() != 2 {
                return Err(Error::checkpoint(&self.file, format!("quantized tensor '{name}' must be a matrix")));
            }
            return Ok(self.qmatrix(name, shape[0], shape[1])?.dequantize());
        }
        let (info, data) = self.bytes(name)?;
        check_shape(name, &info.shape, shape)?;
        let out: Vec<f32> = match info.dtype {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(Error::checkpoint(
                    self.file_of(&info),
                    format!("tensor '{name}' has dtype {other:?}; only F32, F16 and BF16 are supported"),
                ))
            }
        };
        check_finite(self.file_of(&info), name, &out)?;
        Ok(out)
    }

    /// A quantized weight `[rows, cols]` as stored (`{name}.qweight`, `.scales`, `.mins`).
    pub fn qmatrix(&self, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
        let format = self
            .quantized(name)
            .ok_or_else(|| Error::checkpoint(&self.file, format!("tensor '{name}' is not quantized")))?;
        if !cols.is_multiple_of(GROUP) {
            return Err(Error::checkpoint(
                &self.file,
                format!("quantized '{name}': {cols} columns are not whole groups of {GROUP}"),
            ));
        }
        let (qi, data) = self.bytes(&format!("{name}.qweight"))?;
        let want = if format == QFormat::Q8 { Dtype::I8 } else { Dtype::U8 };
        if qi.dtype != want {
            return Err(Error::checkpoint(
                self.file_of(&qi),
                format!("'{name}.qweight' must be {want:?}, found {:?}", qi.dtype),
            ));
        }
        check_shape(&format!("{name}.qweight"), &qi.shape, &[rows, format.row_bytes(cols)])?;
        let halves = |suffix: &str| -> Result<Vec<half::f16>> {
            let n = format!("{name}.{suffix}");
            let (info, b) = self.bytes(&n)?;
            if info.dtype != Dtype::F16 {
                return Err(Error::checkpoint(
                    self.file_of(&info),
                    format!("'{n}' must be F16, found {:?}", info.dtype),
                ));
            }
            check_shape(&n, &info.shape, &[rows, cols / GROUP])?;
            let v: Vec<half::f16> = b.chunks_exact(2).map(|p| half::f16::from_le_bytes([p[0], p[1]])).collect();
            if let Some(bad) = v.iter().position(|h| !h.is_finite()) {
                return Err(Error::checkpoint(
                    self.file_of(&info),
                    format!("'{n}' holds a non-finite value at element {bad}"),
                ));
            }
            Ok(v)
        };
        let scales = halves("scales")?;
        let mins = if format == QFormat::Q4 { halves("mins")? } else { Vec::new() };
        Ok(QMatrix { format, rows, cols, data: data.into_owned(), scales, mins })
    }

    /// The tensor as token ids (golden files store ids as I32 or I64).
    pub fn ids(&self, name: &str) -> Result<Vec<u32>> {
        let (info, data) = self.bytes(name)?;
        let ids: Vec<i64> = match info.dtype {
            Dtype::I32 => data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect(),
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            other => {
                return Err(Error::checkpoint(
                    self.file_of(&info),
                    format!("tensor '{name}' has dtype {other:?}, expected integer ids"),
                ))
            }
        };
        ids.into_iter()
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| Error::checkpoint(self.file_of(&info), format!("tensor '{name}' holds a negative id")))
            })
            .collect()
    }
}

fn check_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<()> {
    if found != expected {
        return Err(Error::Shape { name: name.to_string(), expected: expected.to_vec(), found: found.to_vec() });
    }
    Ok(())
}

fn check_finite(file: &str, name: &str, v: &[f32]) -> Result<()> {
    if let Some(bad) = v.iter().position(|v| !v.is_finite()) {
        return Err(Error::checkpoint(file, format!("tensor '{name}' holds a non-finite value at element {bad}")));
    }
    Ok(())
}

type Header = (Vec<(String, TensorInfo)>, BTreeMap<String, String>);

/// Reads and checks a safetensors header: `u64` length, JSON object of
/// `name: {dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data section).
fn parse_header(file: &str, src: &dyn ByteSource, shard: usize) -> Result<Header> {
    let bad = |m: String| Error::checkpoint(file, format!("not a valid safetensors file: {m}"));
    let total = src.len();
    if total < 8 {
        return Err(bad(format!("{total} bytes is shorter than the 8-byte header length")));
    }
    let head = src.read(0, 8)?;
    let n = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
    if n > MAX_HEADER || n > total - 8 {
        return Err(bad(format!("header length {n} does not fit the file of {total} bytes")));
    }
    let text = src.read(8, n as usize)?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let obj = json.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
    let data_start = 8 + n;
    let data_len = total - data_start;
    let mut tensors = Vec::with_capacity(obj.len());
    let mut metadata = BTreeMap::new();
    let mut ranges = Vec::with_capacity(obj.len());
    for (name, entry) in obj {
        if name == "__metadata__" {
            if let Some(m) = entry.as_object() {
                for (k, v) in m {
                    metadata.insert(k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string));
                }
            }
            continue;
        }
        let field = |k: &str| entry.get(k).ok_or_else(|| bad(format!("tensor '{name}' has no '{k}'")));
        let dtype_s = field("dtype")?.as_str().ok_or_else(|| bad(format!("tensor '{name}': dtype is not a string")))?;
        let dtype = Dtype::parse(dtype_s).ok_or_else(|| bad(format!("tensor '{name}': unknown dtype '{dtype_s}'")))?;
        let shape = field("shape")?
            .as_array()
            .ok_or_else(|| bad(format!("tensor '{name}': shape is not an array")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad(format!("tensor '{name}': shape holds a non-integer")))?;
        let offs = field("data_offsets")?
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| bad(format!("tensor '{name}': data_offsets must be two integers")))?;
        let (b, e) = offs;
        if b > e || e > data_len {
            return Err(bad(format!(
                "tensor '{name}': data_offsets [{b}, {e}] outside the data section of {data_len} bytes"
            )));
        }
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = numel.and_then(|n| n.checked_mul(dtype.size()));
        if want != Some((e - b) as usize) {
            return Err(bad(format!(
                "tensor '{name}': shape {shape:?} of {dtype:?} needs {} bytes, data_offsets give {}",
                want.map_or("too many".to_string(), |w| w.to_string()),
                e - b
            )));
        }
        ranges.push((b, e, name.clone()));
        tensors.push((name.clone(), TensorInfo { dtype, shape, shard, start: data_start + b, len: (e - b) as usize }));
    }
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad(format!("tensors '{}' and '{}' overlap", w[0].2, w[1].2)));
        }
    }
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend(header.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn reads_tensors_and_rejects_bad_headers() {
        let ok = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#,
            &[0, 0, 128, 63, 0, 0, 0, 64],
        );
        let ck = Checkpoint::parse("t", &ok).unwrap();
        assert_eq!(ck.f32("a", &[2]).unwrap(), vec![1.0, 2.0]);
        assert_eq!(ck.metadata()["format"], "pt");
        let msg = |b: Vec<u8>| Checkpoint::parse("t", &b).err().unwrap().to_string();
        assert!(msg(vec![1, 2]).contains("shorter"));
        assert!(msg(file("{nope", &[])).contains("JSON"));
        assert!(
            msg(file(r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0; 8])).contains("needs 12 bytes")
        );
        assert!(msg(file(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, &[0; 8])).contains("outside"));
        assert!(
            msg(file(r#"{"a":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8])).contains("unknown dtype")
        );
        let two = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        assert!(msg(file(two, &[0; 8])).contains("overlap"));
    }

    #[test]
    fn shards_merge_and_duplicates_are_errors() {
        let a = file(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &[0, 0, 128, 63]);
        let b = file(r#"{"b":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#, &[0, 60]);
        fn src<'a>(n: &str, v: &'a [u8]) -> ShardSource<'a> {
            (n.to_string(), Box::new(v))
        }
        let ck = Checkpoint::from_sources("dir", vec![src("s1", &a), src("s2", &b)]).unwrap();
        assert_eq!(ck.f32("b", &[1]).unwrap(), vec![1.0]);
        assert_eq!(ck.names(), vec!["a", "b"]);
        let dup = Checkpoint::from_sources("dir", vec![src("s1", &a), src("s3", &a)]);
        assert!(dup.err().unwrap().to_string().contains("also in s1"));
    }
}
