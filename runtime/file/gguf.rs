//! Bounds-checked GGUF v2/v3 reader over a read-only memory map.
//!
//! Layout (little-endian; ggml docs/gguf.md, llama.cpp ggml/src/gguf.cpp):
//! ```text
//! "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//! kv_count     x { string key | u32 value_type | value }
//! tensor_count x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//! padding to `general.alignment` (default 32) | tensor data
//! ```
//! A string is `u64 len | len bytes of UTF-8` (no terminator); an array is
//! `u32 element_type | u64 count | count x value`. Tensor offsets are relative to the start
//! of the data section; `TensorInfo::offset` is made absolute here.
//!
//! Every count and length comes from an untrusted file, so each is checked against the
//! bytes that remain *before* anything is allocated or sliced: a corrupt header costs
//! microseconds, not gigabytes. Metadata is parsed into owned values (it is small), within
//! a memory budget proportional to the file (`METADATA_MEMORY_PER_FILE_BYTE`); tensor data
//! is never copied, only sliced out of the mmap.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::file::quant::{ggml_type_name, WeightFormat};
use crate::file::split;

mod parse;
use parse::{parse, Parsed, Quoted};

const MAGIC: [u8; 4] = *b"GGUF";
/// `general.alignment` when the key is absent (GGUF_DEFAULT_ALIGNMENT).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML_MAX_DIMS: ggml tensors have at most 4 dimensions.
const MAX_DIMS: u32 = 4;
/// GGML_MAX_NAME is 64 bytes including the NUL, so llama.cpp rejects longer tensor names.
const MAX_NAME_BYTES: usize = 63;
/// Smallest possible kv entry: empty key (u64 length), u32 type, a 1-byte value.
const KV_MIN_BYTES: u64 = 8 + 4 + 1;
/// Smallest possible tensor info: empty name, u32 n_dims, one u64 dim, u32 type, u64 offset.
const TENSOR_INFO_MIN_BYTES: u64 = 8 + 4 + 8 + 4 + 8;
/// llama.cpp rejects arrays of arrays; gguf-py can write them, so a few levels are read,
/// but not an attacker's million levels of recursion.
const MAX_ARRAY_DEPTH: u32 = 8;
/// Each array element becomes a 32-byte `MetaValue`. Real vocabularies hold well under 1M
/// elements in all their arrays together (tokens, scores, types, merges); this caps what
/// the metadata of even a huge file can take at 256 MiB.
const MAX_ARRAY_ELEMENTS: u64 = 1 << 23;
/// Metadata in memory may take this many bytes per byte of the file, plus
/// `METADATA_MEMORY_SLACK`, charged before each table, array or string is allocated. Real
/// metadata takes 3-5x its bytes (a token: an 8-byte length and its text in the file, a
/// 32-byte `MetaValue` and its text in memory; a 4-byte score or token type: 32 bytes), and
/// model files are mostly tensor data. Without it an array of 1-byte values (u8, i8, bool)
/// with a count as large as the bytes left would take 32x the file.
const METADATA_MEMORY_PER_FILE_BYTE: u64 = 8;
const METADATA_MEMORY_SLACK: u64 = 1 << 20;
/// Keys and names quoted in error messages are cut to this many characters: a corrupt length
/// can make a "key" of megabytes.
const MAX_QUOTED_CHARS: usize = 64;

/// One metadata value. Arrays hold values of a single type (GGUF stores the element type once).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The GGUF type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "u8",
            MetaValue::I8(_) => "i8",
            MetaValue::U16(_) => "u16",
            MetaValue::I16(_) => "i16",
            MetaValue::U32(_) => "u32",
            MetaValue::I32(_) => "i32",
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F32(_) => "f32",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::Str(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// Any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v),
            MetaValue::U64(v) => i64::try_from(v).ok(),
            _ => self.as_u64().map(|v| v as i64), // u8..u32 always fit
        }
    }

    /// F32, or F64 rounded to f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Short description for "expected X, found Y" messages: scalars with their value,
    /// strings and arrays by kind only (they can be megabytes).
    fn describe(&self) -> String {
        match self {
            MetaValue::Str(_) => "a string".to_string(),
            MetaValue::Array(a) => format!("an array of {} values", a.len()),
            MetaValue::U8(v) => format!("u8 {v}"),
            MetaValue::I8(v) => format!("i8 {v}"),
            MetaValue::U16(v) => format!("u16 {v}"),
            MetaValue::I16(v) => format!("i16 {v}"),
            MetaValue::U32(v) => format!("u32 {v}"),
            MetaValue::I32(v) => format!("i32 {v}"),
            MetaValue::U64(v) => format!("u64 {v}"),
            MetaValue::I64(v) => format!("i64 {v}"),
            MetaValue::F32(v) => format!("f32 {v}"),
            MetaValue::F64(v) => format!("f64 {v}"),
            MetaValue::Bool(v) => format!("bool {v}"),
        }
    }
}

/// Where one tensor lives in the file. Validated at open: the format is supported, the
/// columns are whole blocks, and its data lies inside its file (part `part` of a split
/// model; `offset` is then global over the parts: read the data with
/// [`GgufFile::tensor_bytes`]).
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: dims[0] is the innermost (columns, contiguous in memory).
    pub dims: Vec<u64>,
    pub format: WeightFormat,
    /// Byte offset of the data: absolute in the file, or for a split model global over
    /// its parts (see [`GgufFile`]).
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
    /// The part holding it, 0-based (0 unless the model is split).
    pub part: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Product of dims[1..]: the number of rows of `n_cols` elements.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
    /// dims[0], the contiguous dimension.
    pub fn n_cols(&self) -> u64 {
        self.dims.first().copied().unwrap_or(0)
    }
}

/// An open GGUF model: parsed metadata and tensor table, tensor data left in the mmap —
/// one file, or all the parts of a split model ([`crate::file::split`]). Tensor offsets
/// are global: part `i`'s bytes start at the sum of the sizes of the parts before it, as
/// if the parts were one file, so code that reads tensors never asks which part.
pub struct GgufFile {
    /// The first part's path (the only one's, when the model is not split).
    path: PathBuf,
    parts: Vec<Part>,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

/// One mapped file of a model.
struct Part {
    path: PathBuf,
    mmap: Mmap,
    /// Global offset of this part's first byte.
    base: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("parts", &self.parts.len())
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates `path`. Errors: `Io` if it cannot be opened or mapped, `BadFile`
    /// if it is not a consistent GGUF file, `Unsupported` for GGUF v1, big-endian files and
    /// weight types edgeseek cannot run.
    ///
    /// A part of a split model (`<prefix>-0000K-of-0000N.gguf` with `split.count` N) opens
    /// the whole model: every part is mapped and checked (its number, the count, no tensor
    /// twice, the tensor total), whichever part `path` names.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let (mmap, parsed) = map_and_parse(path)?;
        let count = split_field(path, &parsed, split::KEY_COUNT)?.unwrap_or(1);
        if count <= 1 {
            return Ok(GgufFile::single(path, mmap, parsed));
        }
        let Some((prefix, named_no, named_count)) = split::parse_name(path) else {
            return Err(Error::bad_file(
                path,
                format!(
                    "is part of a model split in {count} files (split.count), but its name \
                     does not end in -0000K-of-{count:05}.gguf, so the other parts cannot be found"
                ),
            ));
        };
        if named_count != count {
            return Err(Error::bad_file(
                path,
                format!("is named as one of {named_count} parts but holds split.count {count}"),
            ));
        }
        if named_no == 0 || named_no > count {
            return Err(Error::bad_file(
                path,
                format!("is named as part {named_no} of {count}, which no split has"),
            ));
        }
        // The part `path` names is mapped and parsed already: its place in the loop reuses it.
        let mut named = Some((mmap, parsed));
        let mut parts = Vec::with_capacity(count as usize);
        for no in 1..=count {
            let part = split::part_path(path, &prefix, no, count);
            let opened = if no == named_no { named.take() } else { None };
            let (mmap, parsed) = match opened {
                Some(p) => p,
                None => map_and_parse(&part).map_err(|e| match e {
                    Error::Io { source, .. } => Error::io(
                        &part,
                        std::io::Error::new(
                            source.kind(),
                            format!(
                                "part {no} of the {count}-part model {}: {source}",
                                path.display()
                            ),
                        ),
                    ),
                    other => other,
                })?,
            };
            check_part(&part, &parsed, no, count)?;
            parts.push((part, mmap, parsed));
        }
        let first = parts[0].0.clone();
        let want = split_field(&first, &parts[0].2, split::KEY_TENSORS)?;
        let file = GgufFile::merge(&first, parts)?;
        if let Some(want) = want {
            if file.tensors.len() as u64 != u64::from(want) {
                return Err(Error::bad_file(
                    &first,
                    format!(
                        "its {count} parts hold {} tensors, but split.tensors.count says {want}",
                        file.tensors.len()
                    ),
                ));
            }
        }
        Ok(file)
    }

    /// One file (no tensor can be listed twice: `parse` refused that).
    fn single(path: &Path, mmap: Mmap, parsed: Parsed) -> GgufFile {
        GgufFile {
            path: path.to_path_buf(),
            parts: vec![Part {
                path: path.to_path_buf(),
                mmap,
                base: 0,
            }],
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            tensor_index: parsed.tensor_index,
        }
    }

    /// The parts of a split model as one: the first part's metadata, every part's tensors
    /// with global offsets.
    fn merge(first: &Path, parts: Vec<(PathBuf, Mmap, Parsed)>) -> Result<GgufFile> {
        let mut merged: Vec<Part> = Vec::with_capacity(parts.len());
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut tensor_index: HashMap<String, usize> = HashMap::new();
        let mut head = None;
        let mut base = 0u64;
        for (i, (path, mmap, parsed)) in parts.into_iter().enumerate() {
            for mut t in parsed.tensors {
                if let Some(&other) = tensor_index.get(&t.name) {
                    let where_ = tensors[other].part;
                    return Err(Error::bad_file(
                        &path,
                        format!(
                            "tensor '{}' is also in part {} ({})",
                            Quoted(&t.name),
                            where_ + 1,
                            merged[where_].path.display()
                        ),
                    ));
                }
                t.offset += base;
                t.part = i;
                tensor_index.insert(t.name.clone(), tensors.len());
                tensors.push(t);
            }
            let size = mmap.len() as u64;
            if head.is_none() {
                head = Some((
                    parsed.version,
                    parsed.alignment,
                    parsed.data_offset,
                    parsed.metadata,
                ));
            }
            merged.push(Part { path, mmap, base });
            base += size;
        }
        let (version, alignment, data_offset, metadata) =
            head.ok_or_else(|| Error::Internal("a split model without parts".into()))?;
        Ok(GgufFile {
            path: first.to_path_buf(),
            parts: merged,
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
            tensor_index,
        })
    }

    /// The path the model is named by: the first part's for a split model.
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Bytes of all parts together.
    pub fn file_size(&self) -> u64 {
        self.parts.iter().map(|p| p.mmap.len() as u64).sum()
    }
    /// The files the model was read from: one, or every part of a split model in order.
    pub fn part_paths(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().map(|p| p.path.as_path())
    }
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Absolute offset of the tensor data section (of the first part).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// A metadata value by key. Linear: files have tens of keys, and config reads each once.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Any integer type whose value fits a u32 (converters disagree on u32 vs i32 vs u64).
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>> {
        self.get_as(key, "an unsigned integer that fits in 32 bits", |v| {
            v.as_u64().and_then(|x| u32::try_from(x).ok())
        })
    }
    /// Any integer type holding a non-negative value.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get_as(key, "a non-negative integer", MetaValue::as_u64)
    }
    /// F32, or F64 rounded to f32.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        self.get_as(key, "a float (f32 or f64)", MetaValue::as_f32)
    }
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get_as(key, "a bool", MetaValue::as_bool)
    }
    pub fn get_str(&self, key: &str) -> Result<Option<&str>> {
        self.get_as(key, "a string", MetaValue::as_str)
    }
    pub fn get_array(&self, key: &str) -> Result<Option<&[MetaValue]>> {
        self.get_as(key, "an array", MetaValue::as_array)
    }

    /// `general.architecture` ("llama", "qwen2", "deepseek2", ...).
    pub fn architecture(&self) -> Result<&str> {
        const KEY: &str = "general.architecture";
        self.get_str(KEY)?
            .ok_or_else(|| Error::bad_file(&self.path, format!("metadata key '{KEY}' is missing")))
    }

    /// Ok(None) if absent; BadFile naming the key, what was expected and what was found if
    /// `convert` rejects the value.
    fn get_as<'a, T>(
        &'a self,
        key: &str,
        expected: &str,
        convert: impl FnOnce(&'a MetaValue) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match convert(value) {
            Some(v) => Ok(Some(v)),
            None => Err(Error::bad_file(
                &self.path,
                format!(
                    "metadata key '{key}' holds {}, expected {expected}",
                    value.describe()
                ),
            )),
        }
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of the tensor called `name`, straight from the mapping (checked at open).
    pub fn tensor_bytes(&self, name: &str) -> Option<&[u8]> {
        self.tensor(name).map(|t| self.tensor_data(t))
    }

    /// The tensor's bytes, straight from the mmap (checked at open). `t` must come from this
    /// file; a `TensorInfo` pointing outside it panics (so not public: embedders use
    /// [`GgufFile::tensor_bytes`]).
    pub(crate) fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        self.range(t.offset, t.size)
    }

    /// `len` bytes at global `offset`, inside a tensor's data checked at open (so inside
    /// one part).
    pub(crate) fn range(&self, offset: u64, len: u64) -> &[u8] {
        let (part, local) = self.locate(offset);
        &part.mmap[local as usize..(local + len) as usize]
    }

    /// The part holding global `offset`, and the offset within it.
    fn locate(&self, offset: u64) -> (&Part, u64) {
        let i = self
            .parts
            .partition_point(|p| p.base <= offset)
            .saturating_sub(1);
        let part = &self.parts[i];
        (part, offset - part.base)
    }

    /// Tells the kernel the whole pages inside this range are not needed for now, so
    /// that data streamed out of the mapping (MoE experts) does not stay in the
    /// process's resident set. The pages stay in the page cache; reading them again
    /// faults them back in from the file.
    pub(crate) fn release(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        {
            let (part, offset) = self.locate(offset);
            const PAGE: u64 = 4096;
            let start = offset.next_multiple_of(PAGE);
            let end = (offset + len) / PAGE * PAGE;
            if end > start {
                // SAFETY: the mapping is a read-only shared file mapping and no slice
                // of it is borrowed across this call by the caller (the bytes were
                // already copied out); MADV_DONTNEED on such a mapping only drops the
                // page table entries, later reads see the file's contents again.
                let _ = unsafe {
                    part.mmap.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start as usize,
                        (end - start) as usize,
                    )
                };
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }

    /// The first part's bytes: the whole file when the model is not split.
    pub fn bytes(&self) -> &[u8] {
        &self.parts[0].mmap
    }
}

/// Maps and parses one file, refusing what is not a regular file before opening it.
fn map_and_parse(path: &Path) -> Result<(Mmap, Parsed)> {
    // Only a regular file can be a model, and anything else must be refused before it
    // is opened: opening a FIFO blocks until something writes to it, and mapping a
    // directory or a device fails with an errno ("No such device") that names neither.
    let kind = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    refuse_non_file(path, &kind.file_type())?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // Again on what was opened, in case the path changed in between.
    let kind = file.metadata().map_err(|e| Error::io(path, e))?;
    refuse_non_file(path, &kind.file_type())?;
    // SAFETY: the mapping is read-only and we never hand out `&mut`. Mapping a file is
    // only unsound if another process truncates or rewrites it while it is mapped; model
    // files are inputs nobody edits while a model runs (llama.cpp maps them the same
    // way), and avoiding the map would mean copying gigabytes of weights to the heap.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let parsed = parse(path, &mmap)?;
    Ok((mmap, parsed))
}

/// Part `no` (1-based) of a `count`-part split must say so in its `split.*` keys.
fn check_part(part: &Path, parsed: &Parsed, no: u32, count: u32) -> Result<()> {
    let part_no = split_field(part, parsed, split::KEY_NO)?;
    let part_count = split_field(part, parsed, split::KEY_COUNT)?;
    if part_no == Some(no - 1) && part_count == Some(count) {
        return Ok(());
    }
    let said = |v: Option<u32>| v.map_or("nothing".to_string(), |v| v.to_string());
    Err(Error::bad_file(
        part,
        format!(
            "should be part {no} of {count} (split.no {}, split.count {count}) but holds \
             split.no {} and split.count {}: a part of another split?",
            no - 1,
            said(part_no),
            said(part_count)
        ),
    ))
}

/// A `split.*` count of a parsed file: any integer type that fits u32 (llama.cpp writes
/// u16 and i32), else BadFile naming the key.
fn split_field(path: &Path, parsed: &Parsed, key: &str) -> Result<Option<u32>> {
    let Some((_, v)) = parsed.metadata.iter().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    match v.as_u64().and_then(|x| u32::try_from(x).ok()) {
        Some(n) => Ok(Some(n)),
        None => Err(Error::bad_file(
            path,
            format!(
                "metadata key '{key}' holds {}, expected a count",
                v.describe()
            ),
        )),
    }
}

/// An `Io` error (the path is at fault, not a file's contents) for a path that is not a
/// regular file: a directory where a model file was expected, a FIFO, a device.
fn refuse_non_file(path: &Path, kind: &std::fs::FileType) -> Result<()> {
    use std::io::{Error as IoError, ErrorKind};
    let (error_kind, what) = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        (ErrorKind::IsADirectory, "a directory, not a file")
    } else {
        (ErrorKind::InvalidInput, special_file_kind(kind))
    };
    let message = format!("is {what}; expected a GGUF model file (.gguf)");
    Err(Error::io(path, IoError::new(error_kind, message)))
}

#[cfg(unix)]
fn special_file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe), not a regular file"
    } else if kind.is_char_device() {
        "a character device, not a regular file"
    } else if kind.is_block_device() {
        "a block device, not a regular file"
    } else if kind.is_socket() {
        "a socket, not a regular file"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "not a regular file"
}
