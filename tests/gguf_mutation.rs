//! Everything the CPU does with a model file before the GPU is touched — `GgufFile::open`,
//! walking the metadata and the tensor table, reading every tensor's bytes, `Config`,
//! `Tokenizer` and `ChatTemplate` — on real fixtures broken on purpose. Every case must
//! return Ok or an error that names the file, must not panic, must finish well inside a
//! second, and must not allocate more than a bound tied to the file's size.
//!
//! The cases are
//! - a truncation at every byte of the header, metadata and tensor table (and a stride of
//!   truncations in the tensor data);
//! - seeded mutations, most of them aimed at the fields the test finds by parsing the
//!   fixture's layout itself (lengths, counts, value and array types, array lengths, tensor
//!   dimension counts, dimensions, weight types, offsets, config values, duplicate names),
//!   set to values that sit on a boundary (0, 1, max, 2^31, 2^32, 2^63, just past the end
//!   of the file, off by one); the rest plain byte flips, splices and truncations.
//!
//! `EDGESEEK_MUTATIONS=N` runs N seeded mutations instead of the CI count (split over the
//! fixtures as in `MUTATION_SHARES`), `EDGESEEK_MUTATION_SEED=S` another seed. A failure
//! prints the seed, the case number and the mutation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeseek::{ChatTemplate, Config, Error, Tokenizer};
use edgeseek::{GgufFile, MetaValue};

// ---- Counting every allocation of the thread under test ----

/// Wraps the system allocator and keeps, per thread, the bytes live, their peak and the
/// largest single request. Per thread because the test harness runs tests in parallel in
/// one process; the code under test allocates on the calling thread only.
struct Counting;

#[derive(Clone, Copy)]
struct AllocStats {
    /// Signed: a block freed here may have been allocated on another thread.
    live: i64,
    peak: i64,
    largest: u64,
}

thread_local! {
    static STATS: Cell<AllocStats> = const {
        Cell::new(AllocStats { live: 0, peak: 0, largest: 0 })
    };
}

fn note_alloc(size: usize) {
    let _ = STATS.try_with(|s| {
        let mut v = s.get();
        v.live += size as i64;
        v.peak = v.peak.max(v.live);
        v.largest = v.largest.max(size as u64);
        s.set(v);
    });
}

fn note_free(size: usize) {
    let _ = STATS.try_with(|s| {
        let mut v = s.get();
        v.live -= size as i64;
        s.set(v);
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only touches a
// const-initialised thread-local `Cell` without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Old and new block counted together: a moving realloc holds both for a moment.
            note_alloc(new_size);
            note_free(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one case allocated: the largest single request and how far the live bytes rose
/// above where they were when it started.
#[derive(Clone, Copy, Debug, Default)]
struct CaseMemory {
    largest: u64,
    peak_growth: u64,
}

fn measure_memory<T>(f: impl FnOnce() -> T) -> (T, CaseMemory) {
    let start = STATS.with(|s| {
        let mut v = s.get();
        v.peak = v.live;
        v.largest = 0;
        s.set(v);
        v.live
    });
    let out = f();
    let end = STATS.with(Cell::get);
    let memory = CaseMemory {
        largest: end.largest,
        peak_growth: (end.peak - start).max(0) as u64,
    };
    (out, memory)
}

// ---- The limits every case is held to ----

/// A case that takes this long is a hang in the making. The slowest (the vocabulary fixture:
/// 1.7 MB of metadata and a 50k-token tokenizer) takes 0.1-0.3 s at the test profile's
/// opt-level 1 on a busy 2-core machine; the rest take under 0.15 s.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(1);

/// Longest error message accepted as "clear": the file path, the field and the numbers fit
/// easily; a message that quotes a megabyte of mutated key does not.
const MAX_MESSAGE_BYTES: usize = 600;

/// The most a case may allocate (largest single block and peak growth alike) for a file of
/// `file_size` bytes: linear in the file, never in a count the file claims. The parts, with
/// what they measured (peak growth over file size, test profile):
/// - The reader budgets metadata at 8 bytes per file byte + 1 MiB, charged before anything
///   is allocated (`METADATA_MEMORY_PER_FILE_BYTE` in runtime/file/gguf.rs). A fixture's own
///   metadata takes ~3x (the GPT-2 vocabulary: 5.6 MB for 1.77 MB); an array retyped to fill
///   the rest of the file meets the budget (8.0x: 24.5 MB, one block, for the 3.07 MB MoE
///   fixture; 32x before the budget existed). The tensor table takes 2-3x its own bytes.
/// - The tokenizer copies its vocabulary several times (texts, the BPE's vocabulary both
///   ways, merges, a byte table): +12.6 MB for the GPT-2 vocabulary, 7.1x that file, which
///   is nearly all vocabulary. Rounded up to 8.
/// - Fixed: compiled pre-tokenizer regexes (Unicode classes), minimum hash table sizes: the
///   dense fixture, 384 tokens, loads in 1.0 MB in all.
///
/// The most measured is 10.3x (the vocabulary fixture as is, 18.2 MB).
fn memory_bound(file_size: u64) -> u64 {
    const READER_PER_FILE_BYTE: u64 = 8;
    const TOKENIZER_PER_FILE_BYTE: u64 = 8;
    const FIXED: u64 = 4 << 20;
    (READER_PER_FILE_BYTE + TOKENIZER_PER_FILE_BYTE) * file_size + FIXED
}

// ---- What runs on each file ----

/// How far a case got.
#[derive(Clone, Copy, Debug, Default)]
struct Reached {
    opened: bool,
    config: bool,
    tokenizer: bool,
    /// A tokenizer was built (not reused, see `KnownTokenizer`).
    tokenizer_built: bool,
    chat_template: bool,
}

/// An error must name this file, say what is wrong in a few hundred bytes, and be one of
/// the kinds a bad file gives (not a GPU, limit or I/O error).
fn check_error(err: &Error, path: &Path) -> Result<(), String> {
    let message = err.to_string();
    let (p, problem) = match err {
        Error::BadFile { path, problem } => (path, problem),
        Error::Unsupported { path, what } => (path, what),
        other => return Err(format!("unexpected kind of error: {other}")),
    };
    if p != path {
        return Err(format!("error names {} instead: {message}", p.display()));
    }
    if problem.trim().is_empty() {
        return Err(format!("empty problem: {message:?}"));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "error of {} bytes: {}...",
            message.len(),
            message.chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

/// The fixture's own `tokenizer.*` metadata and whether its tokenizer loaded.
///
/// A tokenizer depends on nothing else in the file, so a case whose `tokenizer.*` metadata
/// equals the fixture's (a mutation elsewhere) would build the very tokenizer the fixture
/// builds, which `run_mutations` checks first; such cases reuse that result. The 2.7 ms a
/// 384-token tokenizer takes to build (its pre-tokenizer regexes) would otherwise be most
/// of the dense model's run time.
#[derive(Default)]
struct KnownTokenizer {
    metadata: Vec<(String, MetaValue)>,
    loaded: bool,
}

fn tokenizer_metadata(file: &GgufFile) -> impl Iterator<Item = &(String, MetaValue)> {
    file.metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
}

/// Everything `Model::load` does with a file before it creates a GPU context (and a bit
/// more: the typed getters on every key, a tokenizer round trip), each error checked.
fn exercise(path: &Path, known: Option<&KnownTokenizer>) -> Result<Reached, String> {
    let mut reached = Reached::default();
    let file = match GgufFile::open(path) {
        Ok(f) => f,
        Err(e) => {
            check_error(&e, path)?;
            return Ok(reached);
        }
    };
    reached.opened = true;
    walk(&file, path)?;

    match Config::from_gguf(&file) {
        Ok(cfg) => {
            reached.config = true;
            use_config(&cfg);
        }
        Err(e) => check_error(&e, path)?,
    }
    // As lib.rs load_tokenizer: only files that name a tokenizer model get one.
    let same_tokenizer = known.is_some_and(|k| tokenizer_metadata(&file).eq(k.metadata.iter()));
    if same_tokenizer {
        reached.tokenizer = known.is_some_and(|k| k.loaded);
    } else if file.get("tokenizer.ggml.model").is_some() {
        reached.tokenizer_built = true;
        match Tokenizer::from_gguf(&file) {
            Ok(t) => {
                reached.tokenizer = true;
                round_trip(&t)?;
            }
            Err(e) => check_error(&e, path)?,
        }
    }
    match ChatTemplate::from_gguf(&file) {
        Ok(t) => reached.chat_template = t.is_some(),
        Err(e) => check_error(&e, path)?,
    }
    Ok(reached)
}

/// Every metadata value through every typed getter, every tensor through the table's
/// accessors and its data range read page by page.
fn walk(file: &GgufFile, path: &Path) -> Result<(), String> {
    for (key, value) in file.metadata() {
        if !file.get(key).is_some_and(|v| std::ptr::eq(v, value)) {
            return Err(format!("get('{key}') is not the value in metadata()"));
        }
        let results = [
            file.get_u32(key).err(),
            file.get_u64(key).err(),
            file.get_f32(key).err(),
            file.get_bool(key).err(),
            file.get_str(key).err(),
            file.get_array(key).err(),
        ];
        for e in results.iter().flatten() {
            check_error(e, path)?;
        }
    }
    if let Err(e) = file.architecture() {
        check_error(&e, path)?;
    }
    let size = file.file_size();
    let mut checksum = 0u8;
    for t in file.tensors() {
        let by_name = file.tensor(&t.name).map(|i| i.offset);
        if by_name != Some(t.offset) {
            return Err(format!("tensor('{}') finds {by_name:?}", t.name));
        }
        let elements = t.n_elements();
        if t.n_rows().checked_mul(t.n_cols()) != Some(elements) {
            return Err(format!("tensor '{}': rows x columns != elements", t.name));
        }
        match t.offset.checked_add(t.size) {
            Some(end) if end <= size => {}
            _ => return Err(format!("tensor '{}' accepted outside the file", t.name)),
        }
        let Some(data) = file.tensor_bytes(&t.name) else {
            return Err(format!("tensor '{}' listed but not found by name", t.name));
        };
        let at = t.offset as usize;
        if data.len() as u64 != t.size || &file.bytes()[at..at + data.len()] != data {
            return Err(format!("tensor '{}': data range", t.name));
        }
        // One byte per page, and the last: every page of the range is mapped and readable.
        for i in (0..data.len())
            .step_by(4096)
            .chain(data.len().checked_sub(1))
        {
            checksum ^= data[i];
        }
    }
    std::hint::black_box(checksum);
    Ok(())
}

/// What the model code derives from a config that loaded must not overflow either.
fn use_config(cfg: &Config) {
    std::hint::black_box((cfg.q_dim(), cfg.kv_dim(), cfg.rope.magnitude()));
    std::hint::black_box(cfg.rope.inv_freq(cfg.n_rot, &[]));
    if let Some(mla) = &cfg.mla {
        std::hint::black_box(mla.cache_dim());
    }
    for layer in [0, 1, cfg.n_layer.saturating_sub(1)] {
        std::hint::black_box(cfg.is_moe_layer(layer));
    }
}

/// A tokenizer that loaded must also work: encode and decode a little text.
fn round_trip(t: &Tokenizer) -> Result<(), String> {
    let n = t.n_vocab();
    for text in ["Hello, world! 123 héllo\n\n  <|im_end|>", ""] {
        match t.encode(text, true, true) {
            Ok(ids) => {
                if let Some(bad) = ids.iter().find(|&&id| id >= n) {
                    return Err(format!("encode gave id {bad} of a vocabulary of {n}"));
                }
                t.decode(&ids)
                    .map_err(|e| format!("decode of its own ids: {e}"))?;
            }
            Err(Error::Invalid(_)) => {}
            Err(e) => return Err(format!("encode: {e}")),
        }
    }
    let ids: Vec<u32> = (0..n.min(64)).collect();
    t.decode(&ids)
        .map_err(|e| format!("decode of ids 0..64: {e}"))?;
    for id in [0, n / 2, n.saturating_sub(1), n, u32::MAX] {
        std::hint::black_box(t.token_bytes(id));
    }
    Ok(())
}

// ---- A tiny seeded generator (xorshift64*) ----

struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: u64) -> Rng {
        // splitmix64 of the pair, so neighbouring cases start far apart; never 0.
        let mut z = seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---- The fixture's layout, parsed here independently of the reader ----

/// What a span of bytes is, for choosing values that matter to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Field {
    Magic,
    Version,
    TensorCount,
    KvCount,
    KeyLen,
    Key,
    ValueType,
    StrLen,
    Str,
    ArrayType,
    ArrayCount,
    /// A scalar metadata value of this GGUF type id.
    Scalar(u32),
    NameLen,
    Name,
    NDims,
    Dim,
    TensorType,
    Offset,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    at: usize,
    len: usize,
    field: Field,
}

/// One metadata entry: its key and where its key and value are.
struct KvLayout {
    key: String,
    key_len: usize,
    key_text: usize,
    /// The value's string length and text, when the value is a string.
    str_value: Option<(usize, usize)>,
}

/// One tensor info, by span index.
struct TensorLayout {
    name: usize,
    dims: Vec<usize>,
    offset: usize,
}

struct FixtureLayout {
    spans: Vec<Span>,
    /// Span indices by field, for picking a field kind first (the vocabulary's thousands of
    /// strings would otherwise drown the header's few fields).
    by_field: Vec<(Field, Vec<usize>)>,
    kvs: Vec<KvLayout>,
    tensors: Vec<TensorLayout>,
    /// End of the tensor table; the data section starts at the next aligned offset.
    table_end: usize,
    data_offset: usize,
    alignment: u64,
}

struct LayoutParser<'a> {
    b: &'a [u8],
    pos: usize,
    spans: Vec<Span>,
}

impl LayoutParser<'_> {
    fn span(&mut self, len: usize, field: Field) -> usize {
        self.spans.push(Span {
            at: self.pos,
            len,
            field,
        });
        self.pos += len;
        self.spans.len() - 1
    }
    fn int(&mut self, len: usize, field: Field) -> u64 {
        let at = self.pos;
        self.span(len, field);
        let mut v = [0u8; 8];
        v[..len].copy_from_slice(&self.b[at..at + len]);
        u64::from_le_bytes(v)
    }
    /// A string: (length span, text span).
    fn string(&mut self, len_field: Field, text_field: Field) -> (usize, usize) {
        let len = self.int(8, len_field) as usize;
        let len_span = self.spans.len() - 1;
        (len_span, self.span(len, text_field))
    }
    /// A value of GGUF type `ty`; returns an integer value (for general.alignment).
    fn value(&mut self, ty: u32) -> Option<u64> {
        match ty {
            0 | 1 | 7 => Some(self.int(1, Field::Scalar(ty))),
            2 | 3 => Some(self.int(2, Field::Scalar(ty))),
            4..=6 => Some(self.int(4, Field::Scalar(ty))),
            10..=12 => Some(self.int(8, Field::Scalar(ty))),
            8 => {
                self.string(Field::StrLen, Field::Str);
                None
            }
            9 => {
                let elem = self.int(4, Field::ArrayType) as u32;
                let n = self.int(8, Field::ArrayCount);
                for _ in 0..n {
                    self.value(elem);
                }
                None
            }
            _ => panic!("fixture has value type {ty}"),
        }
    }
}

fn text(b: &[u8], span: Span) -> String {
    String::from_utf8_lossy(&b[span.at..span.at + span.len]).into_owned()
}

fn parse_layout(b: &[u8]) -> FixtureLayout {
    let mut p = LayoutParser {
        b,
        pos: 0,
        spans: Vec::new(),
    };
    p.span(4, Field::Magic);
    p.span(4, Field::Version);
    let n_tensors = p.int(8, Field::TensorCount);
    let n_kv = p.int(8, Field::KvCount);
    let mut alignment = 32;
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let (key_len, key_text) = p.string(Field::KeyLen, Field::Key);
        let key = text(b, p.spans[key_text]);
        let ty = p.int(4, Field::ValueType) as u32;
        let first_value_span = p.spans.len();
        let v = p.value(ty);
        if key == "general.alignment" {
            alignment = v.expect("integer alignment");
        }
        let str_value = (ty == 8).then_some((first_value_span, first_value_span + 1));
        kvs.push(KvLayout {
            key,
            key_len,
            key_text,
            str_value,
        });
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let (_, name) = p.string(Field::NameLen, Field::Name);
        let n_dims = p.int(4, Field::NDims);
        let dims = (0..n_dims)
            .map(|_| {
                p.int(8, Field::Dim);
                p.spans.len() - 1
            })
            .collect();
        p.int(4, Field::TensorType);
        p.int(8, Field::Offset);
        let offset = p.spans.len() - 1;
        tensors.push(TensorLayout { name, dims, offset });
    }
    let table_end = p.pos;
    let data_offset = (table_end as u64).next_multiple_of(alignment) as usize;
    let mut by_field: Vec<(Field, Vec<usize>)> = Vec::new();
    for (i, s) in p.spans.iter().enumerate() {
        match by_field.iter_mut().find(|(f, _)| *f == s.field) {
            Some((_, v)) => v.push(i),
            None => by_field.push((s.field, vec![i])),
        }
    }
    FixtureLayout {
        spans: p.spans,
        by_field,
        kvs,
        tensors,
        table_end,
        data_offset,
        alignment,
    }
}

// ---- Mutations ----

/// One way to break the file.
enum Mutation {
    /// Overwrite bytes in place (the file keeps its size).
    Patch(Vec<(usize, Vec<u8>)>),
    /// Keep the first n bytes.
    Truncate(usize),
    /// Replace `remove` bytes at `at` with `insert` (everything after moves).
    Splice {
        at: usize,
        remove: usize,
        insert: Vec<u8>,
    },
}

/// Values that sit on a boundary for a u64 field at byte `at` holding `orig`.
fn boundary_u64(rng: &mut Rng, orig: u64, at: usize, file_len: usize) -> u64 {
    let left = (file_len - at.min(file_len)) as u64;
    let choices = [
        0,
        1,
        2,
        orig.wrapping_sub(1),
        orig.wrapping_add(1),
        orig.wrapping_mul(2),
        orig / 2,
        orig << 8,
        orig | (1 << 32),
        (1 << 31) - 1,
        1 << 31,
        u32::MAX as u64,
        1 << 32,
        (1 << 32) + 1,
        1 << 40,
        1 << 62,
        (1 << 63) - 1,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
        // Just inside and just past the end of the file, from here and from the start.
        left.wrapping_sub(8),
        left.wrapping_sub(9),
        left.wrapping_sub(7),
        left,
        file_len as u64,
        file_len as u64 + 1,
        left / 8,
        left / 13,
        left / 32,
        rng.next(),
        rng.next() % 4096,
    ];
    rng.pick(&choices)
}

fn boundary_u32(rng: &mut Rng, orig: u32) -> u32 {
    let choices = [
        0,
        1,
        2,
        3,
        7,
        8,
        16,
        31,
        32,
        33,
        64,
        127,
        128,
        255,
        256,
        512,
        513,
        1 << 16,
        (1 << 31) - 1,
        1 << 31,
        u32::MAX - 1,
        u32::MAX,
        orig.wrapping_sub(1),
        orig.wrapping_add(1),
        orig.wrapping_mul(2),
        orig / 2,
        orig.wrapping_mul(1024),
        rng.next() as u32,
    ];
    rng.pick(&choices)
}

/// A new value for a field, as little-endian bytes of the field's width.
fn mutate_field(rng: &mut Rng, layout: &FixtureLayout, b: &[u8], span: Span) -> Vec<u8> {
    let old = &b[span.at..span.at + span.len];
    let orig = {
        let mut v = [0u8; 8];
        v[..span.len.min(8)].copy_from_slice(&old[..span.len.min(8)]);
        u64::from_le_bytes(v)
    };
    let le32 = |v: u32| v.to_le_bytes().to_vec();
    let le64 = |v: u64| v.to_le_bytes().to_vec();
    match span.field {
        Field::Magic => rng
            .pick(&[b"GGML", b"FUGG", b"\0\0\0\0", b"gguf", b"GGUf"])
            .to_vec(),
        Field::Version => le32(rng.pick(&[0, 1, 2, 3, 4, 5, 3 << 24, 2 << 24, u32::MAX])),
        Field::ValueType | Field::ArrayType => {
            // Every type id, the first unknown ones and garbage.
            le32(rng.pick(&[
                0,
                1,
                2,
                3,
                4,
                5,
                6,
                7,
                8,
                9,
                10,
                11,
                12,
                13,
                14,
                255,
                1 << 31,
                u32::MAX,
            ]))
        }
        Field::TensorType => le32(if rng.chance(70) {
            rng.below(42) as u32
        } else {
            rng.pick(&[100, 1000, 1 << 31, u32::MAX])
        }),
        Field::NDims => le32(rng.pick(&[0, 1, 2, 3, 4, 5, 8, 64, 255, 1 << 16, 1 << 31, u32::MAX])),
        Field::Dim => le64(rng.pick(&[
            0,
            1,
            2,
            31,
            32,
            33,
            255,
            256,
            257,
            orig.wrapping_sub(1),
            orig + 1,
            orig * 2,
            orig / 2,
            orig * 32,
            (1 << 31) - 1,
            1 << 31,
            1 << 32,
            1 << 33,
            1 << 62,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX,
        ])),
        Field::Offset => {
            let data_len = (b.len() - layout.data_offset) as u64;
            let a = layout.alignment;
            let other = layout.tensors[rng.below(layout.tensors.len())].offset;
            let other = {
                let s = layout.spans[other];
                u64::from_le_bytes(b[s.at..s.at + 8].try_into().unwrap())
            };
            le64(rng.pick(&[
                0,
                1,
                orig + 1,
                orig + a / 2,
                orig + a,
                orig.wrapping_sub(a),
                orig + (1 << 32),
                other,
                data_len,
                data_len.next_multiple_of(a),
                data_len / a * a,
                data_len.saturating_sub(a) / a * a,
                b.len() as u64,
                !(a - 1), // the largest aligned offset
                (u64::MAX - b.len() as u64) & !(a - 1),
                1 << 63,
                u64::MAX,
            ]))
        }
        Field::TensorCount
        | Field::KvCount
        | Field::KeyLen
        | Field::StrLen
        | Field::NameLen
        | Field::ArrayCount
        | Field::Scalar(10 | 11) => le64(boundary_u64(rng, orig, span.at + span.len, b.len())),
        Field::Scalar(4 | 5) => le32(boundary_u32(rng, orig as u32)),
        Field::Scalar(6) => {
            let f = f32::from_bits(orig as u32);
            le32(
                rng.pick(&[
                    f32::NAN,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    0.0,
                    -0.0,
                    -1.0,
                    1.0,
                    f32::MIN_POSITIVE / 2.0,
                    f32::MAX,
                    1e-30,
                    -f,
                    f * 1000.0,
                    f / 1000.0,
                ])
                .to_bits(),
            )
        }
        Field::Scalar(12) => le64(
            rng.pick(&[f64::NAN, f64::INFINITY, 0.0, -1.0, 1e300, f64::MIN_POSITIVE])
                .to_bits(),
        ),
        Field::Scalar(7) => vec![rng.pick(&[0, 1, 2, 255])],
        Field::Scalar(_) => {
            let mut v = old.to_vec();
            let i = rng.below(v.len());
            let random = rng.next() as u8;
            v[i] = rng.pick(&[0, 1, 0x7F, 0x80, 0xFF, random]);
            v
        }
        Field::Key | Field::Str | Field::Name => {
            let mut v = old.to_vec();
            if v.is_empty() {
                return v;
            }
            let i = rng.below(v.len());
            // Bytes that break UTF-8 (a lone continuation, a cut 2-byte lead, 0xFF), a NUL,
            // a character that changes a name or a number.
            v[i] = rng.pick(&[0x80, 0xC3, 0xFF, 0x00, b'x', b'.', b'0', b'9', b' ', b'\n']);
            v
        }
    }
}

/// Overwrites a span's bytes with those of another span of the same field and length
/// (a duplicate key or tensor name, or another token), if there is one.
fn copy_same_length(
    rng: &mut Rng,
    layout: &FixtureLayout,
    b: &[u8],
    field: Field,
) -> Option<(usize, Vec<u8>)> {
    let (_, idx) = layout.by_field.iter().find(|(f, _)| *f == field)?;
    let target = layout.spans[rng.pick(idx)];
    let same: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&i| layout.spans[i].len == target.len && layout.spans[i].at != target.at)
        .collect();
    if same.is_empty() {
        return None;
    }
    let source = layout.spans[rng.pick(&same)];
    Some((target.at, b[source.at..source.at + source.len].to_vec()))
}

/// Strings worth putting where a string value was: architectures, tokenizer models and
/// pre-tokenizers, rope scaling types, an empty string and a long one.
const STRINGS: &[&str] = &[
    "",
    "llama",
    "qwen2",
    "qwen3",
    "qwen3moe",
    "deepseek2",
    "mamba",
    "gpt2",
    "llama-bpe",
    "qwen2",
    "default",
    "smollm",
    "deepseek-llm",
    "yarn",
    "none",
    "linear",
    "<|im_start|>",
    // ChatML as ChatTemplate::detect knows it, a Llama 3 one, and a cut copy.
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + mess",
];

fn generate(rng: &mut Rng, layout: &FixtureLayout, b: &[u8]) -> (Mutation, String) {
    let roll = rng.below(100);
    if roll < 62 {
        // One boundary value in one field.
        let (field, idx) = &layout.by_field[rng.below(layout.by_field.len())];
        let span = layout.spans[rng.pick(idx)];
        let v = mutate_field(rng, layout, b, span);
        let desc = format!("{field:?} at byte {} := {:02x?}", span.at, v);
        (Mutation::Patch(vec![(span.at, v)]), desc)
    } else if roll < 70 {
        // Two to four fields at once: errors that only show when several agree.
        let n = 2 + rng.below(3);
        let mut patches = Vec::new();
        let mut desc = String::new();
        for _ in 0..n {
            let (field, idx) = &layout.by_field[rng.below(layout.by_field.len())];
            let span = layout.spans[rng.pick(idx)];
            let v = mutate_field(rng, layout, b, span);
            desc += &format!("{field:?} at byte {} := {:02x?}; ", span.at, v);
            patches.push((span.at, v));
        }
        (Mutation::Patch(patches), desc)
    } else if roll < 71 {
        // An array read as another element type, with a count that fills the rest of the
        // file (or just overfills it): the most elements the bytes left could hold. (1%:
        // a 4-byte type that fits parses ~750k values of the MoE fixture, ~15 ms.)
        let (_, types) = layout
            .by_field
            .iter()
            .find(|(f, _)| *f == Field::ArrayType)
            .unwrap();
        let ty_span = layout.spans[rng.pick(types)];
        let ty = rng.pick(&[0u32, 1, 7, 2, 4, 6, 10, 8, 9]);
        let min_bytes: u64 = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            9 => 12,
            _ => 8,
        };
        let left = (b.len() - (ty_span.at + 12)) as u64;
        let count = left / min_bytes + rng.pick(&[0, 0, 1]);
        let mut patch = ty.to_le_bytes().to_vec();
        patch.extend_from_slice(&count.to_le_bytes());
        let desc = format!("array at byte {} := type {ty}, count {count}", ty_span.at);
        (Mutation::Patch(vec![(ty_span.at, patch)]), desc)
    } else if roll < 75 && !layout.tensors.is_empty() {
        // Dimensions whose product overflows 64 bits (or i64), or just fits.
        let t = &layout.tensors[rng.below(layout.tensors.len())];
        let values: &[u64] = rng.pick(&[
            &[1 << 32, 1 << 32][..],
            &[1 << 62, 4],
            &[u64::MAX / 3, 3],
            &[1 << 31, 1 << 31, 1 << 2],
            &[(1 << 32) + 1, (1 << 31) - 1],
            &[256, 1 << 55],
        ]);
        let patches: Vec<(usize, Vec<u8>)> = t
            .dims
            .iter()
            .zip(values)
            .map(|(&d, v)| (layout.spans[d].at, v.to_le_bytes().to_vec()))
            .collect();
        let desc = format!(
            "dims of tensor at byte {} := {values:?}",
            layout.spans[t.name].at
        );
        (Mutation::Patch(patches), desc)
    } else if roll < 78 {
        // A duplicate key, tensor name or token.
        let field = rng.pick(&[Field::Key, Field::Name, Field::Str]);
        match copy_same_length(rng, layout, b, field) {
            Some((at, v)) => {
                let desc = format!(
                    "{field:?} at byte {at} := copy {:?}",
                    String::from_utf8_lossy(&v)
                );
                (Mutation::Patch(vec![(at, v)]), desc)
            }
            None => (
                Mutation::Patch(vec![]),
                format!("no same-length {field:?} to copy"),
            ),
        }
    } else if roll < 81 {
        // Another string where a string value was (length rewritten): another
        // architecture, tokenizer, rope scaling, template.
        let kvs: Vec<&KvLayout> = layout
            .kvs
            .iter()
            .filter(|k| k.str_value.is_some())
            .collect();
        let kv = kvs[rng.below(kvs.len())];
        let (len_span, text_span) = kv.str_value.unwrap();
        let (len_span, text_span) = (layout.spans[len_span], layout.spans[text_span]);
        let new = rng.pick(STRINGS);
        let mut insert = (new.len() as u64).to_le_bytes().to_vec();
        insert.extend_from_slice(new.as_bytes());
        let mut at = len_span.at;
        let mut desc = format!("value of '{}' := {new:?}", kv.key);
        if rng.chance(30) {
            // The entry becomes a chat template (the fixtures have none): key and value.
            const KEY: &str = "tokenizer.chat_template";
            let mut entry = (KEY.len() as u64).to_le_bytes().to_vec();
            entry.extend_from_slice(KEY.as_bytes());
            entry.extend_from_slice(&8u32.to_le_bytes());
            entry.extend_from_slice(&insert);
            insert = entry;
            at = layout.spans[kv.key_len].at;
            desc = format!("entry '{}' := {KEY} = {new:?}", kv.key);
        }
        let m = Mutation::Splice {
            at,
            remove: text_span.at + text_span.len - at,
            insert,
        };
        (m, desc)
    } else if roll < 83 {
        // A key renamed to a key the readers look for (a length-changing rename).
        let kv = &layout.kvs[rng.below(layout.kvs.len())];
        let other = &layout.kvs[rng.below(layout.kvs.len())].key;
        let new = match rng.below(3) {
            0 => other.clone(),
            1 => format!("{other}x"),
            _ => other.replace("llama", "deepseek2").replace("qwen", "llama"),
        };
        let (len_span, text_span) = (layout.spans[kv.key_len], layout.spans[kv.key_text]);
        let mut insert = (new.len() as u64).to_le_bytes().to_vec();
        insert.extend_from_slice(new.as_bytes());
        let desc = format!("key '{}' := {new:?}", kv.key);
        let m = Mutation::Splice {
            at: len_span.at,
            remove: len_span.len + text_span.len,
            insert,
        };
        (m, desc)
    } else if roll < 95 {
        // Plain random bytes: mostly in the header and tables, some anywhere.
        let n = 1 + rng.below(8);
        let end = if rng.chance(90) {
            layout.data_offset
        } else {
            b.len()
        };
        let patches: Vec<(usize, Vec<u8>)> = (0..n)
            .map(|_| {
                let at = rng.below(end);
                let v = match rng.below(3) {
                    0 => b[at] ^ (1 << rng.below(8)),
                    1 => rng.pick(&[0, 0xFF, 0x7F, 0x80]),
                    _ => rng.next() as u8,
                };
                (at, vec![v])
            })
            .collect();
        let desc = format!("bytes {patches:?}");
        (Mutation::Patch(patches), desc)
    } else if roll < 98 {
        // A few bytes removed or inserted in the header and tables: everything after shifts.
        let at = rng.below(layout.table_end);
        let remove = rng.below(9).min(b.len() - at);
        let insert: Vec<u8> = (0..rng.below(9)).map(|_| rng.next() as u8).collect();
        let desc = format!("splice at byte {at}: remove {remove}, insert {insert:02x?}");
        (Mutation::Splice { at, remove, insert }, desc)
    } else {
        let len = rng.below(b.len());
        (Mutation::Truncate(len), format!("truncate to {len} bytes"))
    }
}

// ---- Running cases ----

/// The fixture, a scratch copy patched in place for each case (and restored after it), and
/// a second scratch path for cases that change the file's length.
struct Subject {
    name: &'static str,
    pristine: Vec<u8>,
    layout: FixtureLayout,
    dir: PathBuf,
    patched: PathBuf,
    patched_file: File,
    rewritten: PathBuf,
    /// Set once the fixture itself has been checked (see `KnownTokenizer`).
    known: Option<KnownTokenizer>,
    stats: Stats,
}

/// Failures grouped by what went wrong (a panic's location, an error's first words), each
/// with its count and first case, so that one bug does not hide the others.
#[derive(Default)]
struct Failures(Vec<(String, u64, String)>);

impl Failures {
    fn add(&mut self, signature: String, case: String) {
        match self.0.iter_mut().find(|(s, _, _)| *s == signature) {
            Some((_, n, _)) => *n += 1,
            None => self.0.push((signature, 1, case)),
        }
    }
    fn report(&self) -> String {
        let lines = self
            .0
            .iter()
            .map(|(signature, n, case)| format!("{n} x {signature}\n    first: {case}"));
        lines.collect::<Vec<_>>().join("\n")
    }
}

thread_local! {
    /// Set while a case runs: its panics are recorded here, not printed.
    static PANIC: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, turning a panic into its message and location. The panic hook stays quiet
/// for these (thousands of cases could panic the same way) and prints all other panics,
/// such as the test's own assertions, as before.
fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = PANIC.with(|p| {
                let mut p = p.borrow_mut();
                let Some(slot) = p.as_mut() else {
                    return false;
                };
                let msg = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                *slot = Some(format!("{msg} at {}", at.unwrap_or_default()));
                true
            });
            if !quiet {
                default(info);
            }
        }));
    });
    PANIC.with(|p| *p.borrow_mut() = Some(None));
    let result = catch_unwind(AssertUnwindSafe(f));
    let panic = PANIC.with(|p| p.borrow_mut().take().flatten());
    result.map_err(|_| panic.unwrap_or_else(|| "panic without a message".to_string()))
}

#[derive(Default)]
struct Stats {
    cases: u64,
    opened: u64,
    config: u64,
    tokenizer: u64,
    tokenizers_built: u64,
    chat_template: u64,
    slowest: Duration,
    slowest_case: String,
    most_memory: CaseMemory,
    most_memory_case: String,
    /// The first case's: the fixture as is, for mutation runs.
    first_memory: CaseMemory,
    failures: Failures,
}

impl Subject {
    fn new(name: &'static str, test: &str) -> Subject {
        let path = repo().join("tests/fixtures").join(name);
        let pristine = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let layout = parse_layout(&pristine);
        let dir = scratch_dir(&format!("edgeseek-mutation-{}-{test}", std::process::id()));
        let stem = Path::new(name).file_name().unwrap().to_str().unwrap();
        let patched = dir.join(stem);
        std::fs::write(&patched, &pristine).unwrap();
        let patched_file = File::options().write(true).open(&patched).unwrap();
        Subject {
            name,
            pristine,
            layout,
            rewritten: dir.join(format!("resized-{stem}")),
            dir,
            patched,
            patched_file,
            known: None,
            stats: Stats::default(),
        }
    }

    fn apply(&mut self, m: &Mutation, what: &str) {
        match m {
            Mutation::Patch(patches) => {
                for (at, bytes) in patches {
                    self.patched_file.write_all_at(bytes, *at as u64).unwrap();
                }
                self.check(&self.patched.clone(), what);
                for (at, bytes) in patches {
                    let orig = &self.pristine[*at..*at + bytes.len()];
                    self.patched_file.write_all_at(orig, *at as u64).unwrap();
                }
            }
            Mutation::Truncate(len) => {
                std::fs::write(&self.rewritten, &self.pristine[..*len]).unwrap();
                self.check(&self.rewritten.clone(), what);
            }
            Mutation::Splice { at, remove, insert } => {
                let mut bytes = Vec::with_capacity(self.pristine.len() + insert.len());
                bytes.extend_from_slice(&self.pristine[..*at]);
                bytes.extend_from_slice(insert);
                bytes.extend_from_slice(&self.pristine[at + remove..]);
                std::fs::write(&self.rewritten, &bytes).unwrap();
                drop(bytes);
                self.check(&self.rewritten.clone(), what);
            }
        }
    }

    /// One case: no panic, a clear result, in time, within the memory bound.
    fn check(&mut self, path: &Path, what: &str) {
        let file_size = std::fs::metadata(path).unwrap().len();
        let start = Instant::now();
        let (outcome, memory) =
            measure_memory(|| catch_quietly(|| exercise(path, self.known.as_ref())));
        let elapsed = start.elapsed();
        let s = &mut self.stats;
        s.cases += 1;
        let mut failed = |signature: String| s.failures.add(signature, what.to_string());
        match outcome {
            Err(panic) => failed(format!("PANIC: {panic}")),
            Ok(Err(problem)) => {
                // Grouped by the words before the first number or quote.
                let cut = problem
                    .find(|c: char| c.is_ascii_digit() || c == '\'')
                    .unwrap_or(problem.len());
                failed(format!(
                    "{}  (e.g. {})",
                    &problem[..cut],
                    truncate(&problem, 300)
                ));
            }
            Ok(Ok(r)) => {
                s.opened += u64::from(r.opened);
                s.config += u64::from(r.config);
                s.tokenizer += u64::from(r.tokenizer);
                s.tokenizers_built += u64::from(r.tokenizer_built);
                s.chat_template += u64::from(r.chat_template);
            }
        }
        if elapsed > CASE_TIME_LIMIT {
            failed(format!(
                "took more than {CASE_TIME_LIMIT:?}, e.g. {elapsed:?}"
            ));
        }
        let bound = memory_bound(file_size);
        if memory.largest > bound || memory.peak_growth > bound {
            failed(format!(
                "allocated more than the bound, e.g. {memory:?} for a file of {file_size} bytes \
                 (bound {bound})"
            ));
        }
        if elapsed > s.slowest {
            s.slowest = elapsed;
            s.slowest_case = what.to_string();
        }
        if s.cases == 1 {
            s.first_memory = memory;
        }
        if memory.peak_growth > s.most_memory.peak_growth {
            s.most_memory = memory;
            s.most_memory_case = what.to_string();
        }
    }

    /// Prints what ran and fails the test with the first failures, if any.
    fn finish(self, started: Instant) {
        let s = &self.stats;
        let ratio = |m: CaseMemory| m.peak_growth as f64 / self.pristine.len() as f64;
        eprintln!(
            "{} ({} bytes): {} cases in {:.2?} ({} opened, {} with a config, {} with a \
             tokenizer ({} built), {} with a chat template); slowest {:.2?} ({}); first case \
             {:?} = {:.1}x the file; most memory {:?} = {:.1}x the file ({})",
            self.name,
            self.pristine.len(),
            s.cases,
            started.elapsed(),
            s.opened,
            s.config,
            s.tokenizer,
            s.tokenizers_built,
            s.chat_template,
            s.slowest,
            s.slowest_case,
            s.first_memory,
            ratio(s.first_memory),
            s.most_memory,
            ratio(s.most_memory),
            s.most_memory_case,
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        assert!(
            s.failures.0.is_empty(),
            "{}: failing cases:\n{}",
            self.name,
            s.failures.report()
        );
    }
}

/// A new directory in memory (/dev/shm) where there is one: tens of thousands of
/// rewrites and truncations cost a file system journal nothing there.
fn scratch_dir(name: &str) -> PathBuf {
    for base in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        let dir = base.join(name);
        if base.is_dir() && std::fs::create_dir_all(&dir).is_ok() {
            return dir;
        }
    }
    panic!("no scratch directory for {name}");
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
    )
}

const DEFAULT_SEED: u64 = 0x6767_7566_2024;
/// Seeded mutations per run in CI (the issue asks for at least 20,000).
const CI_MUTATIONS: u64 = 20_000;

/// The dense model (llama, with a 384-token vocabulary), a MoE model (deepseek2 V3-style:
/// MLA, expert groups, sigmoid gating; its 'deepseek-v3' pre-tokenizer is one edgeseek
/// refuses) and a tokenizer-only vocabulary (50k-token GPT-2), with their share of the
/// mutations in thousandths. A vocabulary case parses 1.7 MB of metadata and may build a
/// 50k-token tokenizer, 10-45 ms, so it gets few cases.
const DENSE: &str = "models/llama-Q4_0.gguf";
const MOE: &str = "models/deepseek2-v3-Q4_K_M.gguf";
const VOCAB: &str = "vocab/ggml-vocab-gpt-2.gguf";
const MUTATION_SHARES: [(&str, u64); 3] = [(DENSE, 497), (MOE, 497), (VOCAB, 6)];

fn mutations(fixture: &str) -> u64 {
    let total = env_u64("EDGESEEK_MUTATIONS").unwrap_or(CI_MUTATIONS);
    let share = MUTATION_SHARES
        .iter()
        .find(|(f, _)| *f == fixture)
        .unwrap()
        .1;
    total * share / 1000
}

fn run_mutations(fixture: &'static str, test: &str) {
    let started = Instant::now();
    let seed = env_u64("EDGESEEK_MUTATION_SEED").unwrap_or(DEFAULT_SEED);
    let mut subject = Subject::new(fixture, test);
    // The unbroken file first: it must load completely.
    subject.check(&subject.patched.clone(), "the fixture as is");
    assert!(
        subject.stats.failures.0.is_empty() && subject.stats.config + subject.stats.tokenizer > 0,
        "{fixture} does not load: {}",
        subject.stats.failures.report()
    );
    let file = GgufFile::open(&subject.patched).unwrap();
    subject.known = Some(KnownTokenizer {
        metadata: tokenizer_metadata(&file).cloned().collect(),
        loaded: subject.stats.tokenizer > 0,
    });
    drop(file);
    for case in 0..mutations(fixture) {
        let mut rng = Rng::new(seed, case);
        let (m, desc) = generate(&mut rng, &subject.layout, &subject.pristine);
        subject.apply(&m, &format!("seed {seed} case {case}: {desc}"));
    }
    subject.finish(started);
}

/// Every prefix that ends inside the header, metadata or tensor table (and the padding
/// after it), then a stride of prefixes through the tensor data. For the vocabulary, whose
/// metadata is 1.7 MB (each truncation parses up to its length), every byte of the first
/// 16 KiB and a stride after.
fn run_truncations(
    fixture: &'static str,
    test: &str,
    every_byte_up_to: Option<usize>,
    stride: usize,
) {
    let started = Instant::now();
    let mut subject = Subject::new(fixture, test);
    let len = subject.pristine.len();
    let dense_end = every_byte_up_to
        .unwrap_or(subject.layout.data_offset + 1)
        .min(len);
    let mut lens: Vec<usize> = (0..dense_end)
        .chain((dense_end..len).step_by(stride))
        .collect();
    // Longest first: each case is then one ftruncate of the scratch copy, not a rewrite.
    lens.sort_unstable_by(|a, b| b.cmp(a));
    for l in lens {
        subject.patched_file.set_len(l as u64).unwrap();
        let path = subject.patched.clone();
        subject.check(&path, &format!("truncate to {l} bytes"));
    }
    subject.finish(started);
}

#[test]
fn dense_model_truncated_at_every_header_byte() {
    run_truncations(DENSE, "trunc-dense", None, 4099);
}

#[test]
fn moe_model_truncated_at_every_header_byte() {
    run_truncations(MOE, "trunc-moe", None, 16411);
}

#[test]
fn vocabulary_truncated_at_every_header_byte_and_a_stride_after() {
    run_truncations(VOCAB, "trunc-vocab", Some(16 << 10), 32749);
}

#[test]
fn dense_model_under_mutation() {
    run_mutations(DENSE, "mut-dense");
}

#[test]
fn moe_model_under_mutation() {
    run_mutations(MOE, "mut-moe");
}

#[test]
fn vocabulary_under_mutation() {
    run_mutations(VOCAB, "mut-vocab");
}

#[test]
fn generator_reaches_every_field_of_the_fixtures() {
    // The structure-aware mutations only test what the layout parser found.
    for fixture in [DENSE, MOE, VOCAB] {
        let bytes = std::fs::read(repo().join("tests/fixtures").join(fixture)).unwrap();
        let layout = parse_layout(&bytes);
        let fields: Vec<Field> = layout.by_field.iter().map(|(f, _)| *f).collect();
        for f in [
            Field::Magic,
            Field::Version,
            Field::TensorCount,
            Field::KvCount,
            Field::KeyLen,
            Field::Key,
            Field::ValueType,
            Field::StrLen,
            Field::Str,
            Field::ArrayType,
            Field::ArrayCount,
            Field::Scalar(4),
        ] {
            assert!(fields.contains(&f), "{fixture}: no {f:?}");
        }
        if fixture != VOCAB {
            for f in [
                Field::Name,
                Field::NDims,
                Field::Dim,
                Field::TensorType,
                Field::Offset,
                Field::Scalar(6),
            ] {
                assert!(fields.contains(&f), "{fixture}: no {f:?}");
            }
        }
        assert_eq!(layout.data_offset as u64 % layout.alignment, 0);
        let opened = GgufFile::open(&repo().join("tests/fixtures").join(fixture)).unwrap();
        assert_eq!(opened.data_offset(), layout.data_offset as u64, "{fixture}");
        assert_eq!(opened.tensors().len(), layout.tensors.len());
        assert_eq!(opened.metadata().len(), layout.kvs.len());
    }
}

#[test]
fn allocation_counter_sees_a_large_block() {
    // The counter must see what it is meant to bound.
    let ((), m) = measure_memory(|| {
        std::hint::black_box(vec![0u8; 5 << 20]);
    });
    assert!(m.largest >= 5 << 20 && m.peak_growth >= 5 << 20, "{m:?}");
}
