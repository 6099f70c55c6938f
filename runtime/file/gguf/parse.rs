//! The GGUF header parser: every count and length checked against the bytes that remain
//! before anything is allocated or sliced (the layout and the rules: gguf.rs).

use super::*;

/// What `parse` extracts; the mmap is owned by `GgufFile`.
pub(super) struct Parsed {
    pub(super) version: u32,
    pub(super) alignment: u64,
    pub(super) data_offset: u64,
    pub(super) metadata: Vec<(String, MetaValue)>,
    pub(super) tensors: Vec<TensorInfo>,
    pub(super) tensor_index: HashMap<String, usize>,
}

/// A tensor info as read, before validation (which needs the data section offset).
struct RawTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    rel_offset: u64,
}

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    let mut r = Reader {
        path,
        bytes,
        pos: 0,
        array_elements: 0,
        memory_left: METADATA_MEMORY_PER_FILE_BYTE
            .saturating_mul(bytes.len() as u64)
            .saturating_add(METADATA_MEMORY_SLACK),
    };
    let file_size = bytes.len() as u64;
    if bytes.is_empty() {
        return Err(r.bad(
            "the file is empty (0 bytes); a GGUF model file starts with \"GGUF\"".to_string(),
        ));
    }

    let magic: [u8; 4] = r.array(&"GGUF magic")?;
    if magic != MAGIC {
        return Err(r.bad(format!(
            "not a GGUF file: it starts with \"{}\" ({:02x?}), expected \"GGUF\"",
            magic.escape_ascii(),
            magic
        )));
    }
    let version = r.u32(&"GGUF version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Error::unsupported(
                path,
                "GGUF version 1 (from 2023); re-convert the model with a current llama.cpp",
            ))
        }
        // A big-endian file (gguf-py --bigendian) has its version byte-swapped.
        v if (1..=3).contains(&v.swap_bytes()) => {
            return Err(Error::unsupported(
                path,
                "big-endian GGUF; edgeseek reads little-endian files only",
            ))
        }
        v => {
            return Err(Error::unsupported(
                path,
                format!("GGUF version {v}; edgeseek reads versions 2 and 3"),
            ))
        }
    }
    let tensor_count = r.u64(&"tensor count")?;
    let kv_count = r.u64(&"metadata count")?;
    // Both tables follow the header, so both counts must fit in what remains.
    r.check_count(tensor_count, TENSOR_INFO_MIN_BYTES, &"header: tensor count")?;
    r.check_count(kv_count, KV_MIN_BYTES, &"header: metadata count")?;

    r.charge(
        kv_count,
        size_of::<(String, MetaValue)>() as u64,
        &"the metadata table",
    )?;
    let mut metadata = Vec::with_capacity(kv_count as usize);
    for i in 0..kv_count {
        let key = r.string(&format_args!("metadata entry #{i} key"))?;
        let ctx = format!("metadata '{}'", Quoted(&key));
        let type_id = r.u32(&format_args!("{ctx} value type"))?;
        let value = r.value(type_id, &ctx, 0)?;
        metadata.push((key, value));
    }
    let mut first_entry = HashMap::with_capacity(metadata.len());
    for (i, (key, _)) in metadata.iter().enumerate() {
        if let Some(first) = first_entry.insert(key.as_str(), i) {
            return Err(r.bad(format!(
                "metadata key '{}' appears twice (entries #{first} and #{i})",
                Quoted(key)
            )));
        }
    }
    drop(first_entry);

    let alignment = alignment(path, &metadata)?;

    r.check_count(tensor_count, TENSOR_INFO_MIN_BYTES, &"tensor table")?;
    // At most 64 bytes per 32-byte tensor info (checked just above): sized by the file.
    let mut raw = Vec::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        let name = r.string(&format_args!("tensor #{i} name"))?;
        if name.len() > MAX_NAME_BYTES {
            return Err(r.bad(format!(
                "tensor #{i} name '{}' is {} bytes; ggml allows at most {MAX_NAME_BYTES}",
                Quoted(&name),
                name.len()
            )));
        }
        let shown = Quoted(&name);
        let n_dims = r.u32(&format_args!("tensor '{shown}' dimension count"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(r.bad(format!(
                "tensor '{shown}' has {n_dims} dimensions; GGUF tensors have 1 to {MAX_DIMS}"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(r.u64(&format_args!("tensor '{shown}' dimension {d}"))?);
        }
        let ggml_type = r.u32(&format_args!("tensor '{shown}' type"))?;
        let rel_offset = r.u64(&format_args!("tensor '{shown}' offset"))?;
        raw.push(RawTensor {
            name,
            dims,
            ggml_type,
            rel_offset,
        });
    }

    // The data section starts at the next multiple of the alignment after the tensor table.
    let table_end = r.pos as u64;
    let data_offset = table_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| {
            r.bad(format!(
                "data section offset overflows (table ends at {table_end}, alignment {alignment})"
            ))
        })?;

    let mut tensors = Vec::with_capacity(raw.len());
    let mut tensor_index = HashMap::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let info = validate_tensor(path, t, data_offset, alignment, file_size)?;
        if let Some(first) = tensor_index.insert(info.name.clone(), i) {
            return Err(Error::bad_file(
                path,
                format!(
                    "tensor name '{}' appears twice (tensors #{first} and #{i})",
                    Quoted(&info.name)
                ),
            ));
        }
        tensors.push(info);
    }

    Ok(Parsed {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
        tensor_index,
    })
}

/// `general.alignment`: a power of two, default 32. The spec says u32; any integer type that
/// fits is accepted.
fn alignment(path: &Path, metadata: &[(String, MetaValue)]) -> Result<u64> {
    const KEY: &str = "general.alignment";
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match value.as_u64().filter(|a| u32::try_from(*a).is_ok()) {
        Some(a) if a.is_power_of_two() => Ok(a),
        _ => Err(Error::bad_file(
            path,
            format!(
                "metadata '{KEY}' is {}; it must be a power of two (u32)",
                value.describe()
            ),
        )),
    }
}

/// Checks one tensor info against ggml's rules and the file size; makes the offset absolute.
fn validate_tensor(
    path: &Path,
    t: RawTensor,
    data_offset: u64,
    alignment: u64,
    file_size: u64,
) -> Result<TensorInfo> {
    let RawTensor {
        name,
        dims,
        ggml_type,
        rel_offset,
    } = t;
    let bad =
        |problem: String| Error::bad_file(path, format!("tensor '{}' {problem}", Quoted(&name)));

    // ggml stores dimensions as int64_t; a zero dimension makes an empty tensor, which no
    // model has and which would become a zero-sized GPU buffer.
    if let Some(d) = dims.iter().position(|&d| d == 0 || d > i64::MAX as u64) {
        return Err(bad(format!(
            "has dimension {d} = {} (dimensions {dims:?})",
            dims[d]
        )));
    }
    let n_elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    if n_elements.is_none_or(|n| n > i64::MAX as u64) {
        return Err(bad(format!(
            "has dimensions {dims:?} whose product overflows 64 bits"
        )));
    }

    let Some(format) = WeightFormat::from_ggml_type(ggml_type) else {
        let supported: Vec<&str> = WeightFormat::ALL.iter().map(|f| f.name()).collect();
        return Err(Error::unsupported(
            path,
            format!(
                "tensor '{}' has weight type {} ({ggml_type}), supported: {}",
                Quoted(&name),
                ggml_type_name(ggml_type),
                supported.join(", ")
            ),
        ));
    };

    let n_cols = dims[0];
    let n_rows: u64 = dims[1..].iter().product(); // no overflow: n_elements fit
    let block = u64::from(format.block_elems());
    if n_cols % block != 0 {
        return Err(bad(format!(
            "has {n_cols} columns, not a multiple of the {} block size {block}",
            format.name()
        )));
    }
    let size = format
        .row_bytes(n_cols)
        .and_then(|row| row.checked_mul(n_rows))
        .ok_or_else(|| bad(format!("data size overflows 64 bits (dimensions {dims:?})")))?;

    if rel_offset % alignment != 0 {
        return Err(bad(format!(
            "data offset {rel_offset} (in the data section at byte {data_offset}) is not a \
             multiple of the alignment {alignment}"
        )));
    }
    let start = data_offset.checked_add(rel_offset);
    match start.and_then(|s| s.checked_add(size)) {
        Some(end) if end <= file_size => {}
        Some(end) => {
            return Err(bad(format!(
                "data [offset {}..{end}] runs past the end of the file (size {file_size})",
                end - size
            )))
        }
        None => {
            return Err(bad(format!(
                "data at offset {data_offset} + {rel_offset} ({size} bytes) overflows 64 bits; \
                 the file has {file_size} bytes"
            )))
        }
    }
    let offset = data_offset + rel_offset;
    Ok(TensorInfo {
        name,
        dims,
        format,
        offset,
        size,
        part: 0,
    })
}

/// A key or name from the file as error messages quote it: control characters escaped,
/// cut after `MAX_QUOTED_CHARS` characters with its length in bytes.
pub(super) struct Quoted<'a>(pub(super) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_QUOTED_CHARS) {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if chars.next().is_some() {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// GGUF value type ids (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    Str,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        const IDS: [ValueType; 13] = [
            U8, I8, U16, I16, U32, I32, F32, Bool, Str, Array, U64, I64, F64,
        ];
        IDS.get(id as usize).copied()
    }

    /// The fewest bytes one value of this type can occupy: bounds a count by the bytes left.
    fn min_bytes(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            Str => 8,    // u64 length
            Array => 12, // u32 type + u64 count
        }
    }
}

/// A cursor over the file that refuses to read past its end. `what` arguments describe the
/// field being read for error messages; they are only formatted on error.
struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    /// Array elements read so far, against MAX_ARRAY_ELEMENTS.
    array_elements: u64,
    /// Bytes of memory the metadata may still take (METADATA_MEMORY_PER_FILE_BYTE).
    memory_left: u64,
}

impl<'a> Reader<'a> {
    fn bad(&self, problem: String) -> Error {
        Error::bad_file(self.path, problem)
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn fmt::Display) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.bad(format!(
                "{what} at byte {}: needs {n} bytes but the file ends at byte {} (truncated?)",
                self.pos,
                self.bytes.len()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn fmt::Display) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        Ok(s.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self, what: &dyn fmt::Display) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &dyn fmt::Display) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &dyn fmt::Display) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &dyn fmt::Display) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `count` items of at least `min_bytes` each must fit in the bytes left; checked before
    /// any allocation sized by `count`.
    fn check_count(&self, count: u64, min_bytes: u64, what: &dyn fmt::Display) -> Result<()> {
        let needed = u128::from(count) * u128::from(min_bytes);
        if needed > u128::from(self.remaining()) {
            return Err(self.bad(format!(
                "{what} {count} at byte {} needs at least {needed} bytes ({min_bytes} each) but \
                 only {} remain (file size {})",
                self.pos,
                self.remaining(),
                self.bytes.len()
            )));
        }
        Ok(())
    }

    /// Takes `count` items of `item_bytes` each from the metadata memory budget, before
    /// they are allocated.
    fn charge(&mut self, count: u64, item_bytes: u64, what: &dyn fmt::Display) -> Result<()> {
        let bytes = u128::from(count) * u128::from(item_bytes);
        if bytes > u128::from(self.memory_left) {
            let budget =
                METADATA_MEMORY_PER_FILE_BYTE * self.bytes.len() as u64 + METADATA_MEMORY_SLACK;
            return Err(Error::unsupported(
                self.path,
                format!(
                    "{what} at byte {} would take {bytes} bytes of memory, past the {budget} \
                     bytes that the metadata of a {}-byte file may take \
                     ({METADATA_MEMORY_PER_FILE_BYTE} per file byte + \
                     {METADATA_MEMORY_SLACK}); is a count corrupt?",
                    self.pos,
                    self.bytes.len()
                ),
            ));
        }
        self.memory_left -= bytes as u64;
        Ok(())
    }

    fn string(&mut self, what: &dyn fmt::Display) -> Result<String> {
        let len = self.u64(&format_args!("{what} (string length)"))?;
        if len > self.remaining() {
            return Err(self.bad(format!(
                "{what}: string length {len} at byte {} runs past the end of the file ({} bytes \
                 left, file size {})",
                self.pos - 8,
                self.remaining(),
                self.bytes.len()
            )));
        }
        let start = self.pos;
        self.charge(len, 1, what)?;
        let s = self.take(len, what)?;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.bad(format!("{what}: string at byte {start} is not UTF-8 ({e})"))),
        }
    }

    /// One value of type `type_id`; `ctx` names it ("metadata 'general.name'", with "[i]"
    /// appended per array level).
    fn value(&mut self, type_id: u32, ctx: &dyn fmt::Display, depth: u32) -> Result<MetaValue> {
        let Some(ty) = ValueType::from_id(type_id) else {
            return Err(self.bad(format!(
                "{ctx} has unknown value type {type_id} (before byte {})",
                self.pos
            )));
        };
        Ok(match ty {
            ValueType::U8 => MetaValue::U8(self.u8(ctx)?),
            ValueType::I8 => MetaValue::I8(self.u8(ctx)? as i8),
            ValueType::U16 => MetaValue::U16(self.u16(ctx)?),
            ValueType::I16 => MetaValue::I16(self.u16(ctx)? as i16),
            ValueType::U32 => MetaValue::U32(self.u32(ctx)?),
            ValueType::I32 => MetaValue::I32(self.u32(ctx)? as i32),
            ValueType::U64 => MetaValue::U64(self.u64(ctx)?),
            ValueType::I64 => MetaValue::I64(self.u64(ctx)? as i64),
            ValueType::F32 => MetaValue::F32(f32::from_bits(self.u32(ctx)?)),
            ValueType::F64 => MetaValue::F64(f64::from_bits(self.u64(ctx)?)),
            // Like gguf.cpp: any nonzero byte is true.
            ValueType::Bool => MetaValue::Bool(self.u8(ctx)? != 0),
            ValueType::Str => MetaValue::Str(self.string(ctx)?),
            ValueType::Array => MetaValue::Array(self.array_value(ctx, depth)?),
        })
    }

    fn array_value(&mut self, ctx: &dyn fmt::Display, depth: u32) -> Result<Vec<MetaValue>> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.bad(format!(
                "{ctx} nests arrays more than {MAX_ARRAY_DEPTH} deep (at byte {})",
                self.pos
            )));
        }
        let elem_type = self.u32(&format_args!("{ctx} array element type"))?;
        let count = self.u64(&format_args!("{ctx} array length"))?;
        let Some(ty) = ValueType::from_id(elem_type) else {
            return Err(self.bad(format!(
                "{ctx} is an array of unknown value type {elem_type} (before byte {})",
                self.pos - 8
            )));
        };
        self.check_count(count, ty.min_bytes(), &format_args!("{ctx} array length"))?;
        self.array_elements += count; // cannot overflow: each element is >= 1 byte of file
        if self.array_elements > MAX_ARRAY_ELEMENTS {
            return Err(Error::unsupported(
                self.path,
                format!(
                    "{ctx} brings the metadata arrays to {} elements; edgeseek reads at most \
                     {MAX_ARRAY_ELEMENTS}",
                    self.array_elements
                ),
            ));
        }
        self.charge(count, size_of::<MetaValue>() as u64, ctx)?;
        let mut items = Vec::with_capacity(count as usize);
        for i in 0..count {
            items.push(self.value(elem_type, &format_args!("{ctx}[{i}]"), depth + 1)?);
        }
        Ok(items)
    }
}
