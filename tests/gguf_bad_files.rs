//! The GGUF reader on valid files (every metadata type, v2 and v3, tensor data slices) and
//! on broken ones: each broken file must give an error that names the problem, quickly,
//! and nothing may panic or allocate according to an unchecked count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgeseek::Error;
use edgeseek::WeightFormat;
use edgeseek::{GgufFile, MetaValue};

// ---- A minimal GGUF writer (little-endian, as gguf.cpp writes) ----

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    fn header(&mut self, version: u32, n_tensors: u64, n_kv: u64) -> &mut Self {
        self.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }
    fn kv(&mut self, key: &str, v: &MetaValue) -> &mut Self {
        self.str(key).u32(type_id(v)).value(v)
    }
    fn value(&mut self, v: &MetaValue) -> &mut Self {
        match v {
            MetaValue::U8(x) => self.raw(&[*x]),
            MetaValue::I8(x) => self.raw(&x.to_le_bytes()),
            MetaValue::U16(x) => self.raw(&x.to_le_bytes()),
            MetaValue::I16(x) => self.raw(&x.to_le_bytes()),
            MetaValue::U32(x) => self.raw(&x.to_le_bytes()),
            MetaValue::I32(x) => self.raw(&x.to_le_bytes()),
            MetaValue::U64(x) => self.raw(&x.to_le_bytes()),
            MetaValue::I64(x) => self.raw(&x.to_le_bytes()),
            MetaValue::F32(x) => self.raw(&x.to_le_bytes()),
            MetaValue::F64(x) => self.raw(&x.to_le_bytes()),
            MetaValue::Bool(x) => self.raw(&[*x as u8]),
            MetaValue::Str(s) => self.str(s),
            MetaValue::Array(items) => {
                // Empty test arrays are written as i64 arrays (type 11).
                let elem = items.first().map_or(11, type_id);
                self.u32(elem).u64(items.len() as u64);
                for item in items {
                    self.value(item);
                }
                self
            }
        }
    }
    fn tensor_info(&mut self, name: &str, dims: &[u64], ggml_type: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ggml_type).u64(offset)
    }
    fn pad(&mut self, alignment: usize) -> &mut Self {
        while self.buf.len() % alignment != 0 {
            self.buf.push(0);
        }
        self
    }
}

fn type_id(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::Str(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

struct TestTensor {
    name: &'static str,
    dims: Vec<u64>,
    format: WeightFormat,
    data: Vec<u8>,
}

/// A complete file: metadata, tensor table, padding, then each tensor's data at the next
/// aligned offset. The last tensor ends exactly at the end of the file.
fn build(version: u32, metadata: &[(String, MetaValue)], tensors: &[TestTensor]) -> Vec<u8> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .map_or(32, |(_, v)| {
            v.as_u64().unwrap_or(32).clamp(1, 1 << 16) as usize
        });
    let mut w = Writer::default();
    w.header(version, tensors.len() as u64, metadata.len() as u64);
    for (k, v) in metadata {
        w.kv(k, v);
    }
    let mut offset = 0usize;
    for t in tensors {
        w.tensor_info(t.name, &t.dims, t.format.ggml_type(), offset as u64);
        offset = (offset + t.data.len()).next_multiple_of(alignment);
    }
    for t in tensors {
        w.pad(alignment).raw(&t.data);
    }
    w.buf
}

fn tensor(name: &'static str, dims: &[u64], format: WeightFormat, seed: u8) -> TestTensor {
    let n_cols = dims[0];
    let n_rows: u64 = dims[1..].iter().product();
    let size = format.row_bytes(n_cols).unwrap() * n_rows;
    let data = (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    TestTensor {
        name,
        dims: dims.to_vec(),
        format,
        data,
    }
}

fn s(v: &str) -> MetaValue {
    MetaValue::Str(v.to_string())
}

/// Metadata with every value type, including arrays, an empty array and nested arrays.
fn all_types_metadata() -> Vec<(String, MetaValue)> {
    use MetaValue::*;
    let kv = [
        ("general.architecture", s("llama")),
        ("test.u8", U8(200)),
        ("test.i8", I8(-100)),
        ("test.u16", U16(60000)),
        ("test.i16", I16(-30000)),
        ("test.u32", U32(4_000_000_000)),
        ("test.i32", I32(-2_000_000_000)),
        ("test.i32_positive", I32(4096)),
        ("test.u64", U64(1 << 40)),
        ("test.i64", I64(-(1 << 40))),
        ("test.f32", F32(1e-6)),
        ("test.f64", F64(10000.5)),
        ("test.true", Bool(true)),
        ("test.false", Bool(false)),
        ("test.str", s("héllo ✓ \u{0}")),
        ("test.empty_str", s("")),
        ("test.u32s", Array(vec![U32(1), U32(2), U32(3)])),
        ("test.strs", Array(vec![s("<s>"), s(""), s("Ġthe")])),
        ("test.f32s", Array(vec![F32(-1.5), F32(0.25)])),
        ("test.bools", Array(vec![Bool(true), Bool(false)])),
        ("test.empty", Array(vec![])),
        (
            "test.nested",
            Array(vec![Array(vec![I32(1), I32(2)]), Array(vec![I32(3)])]),
        ),
    ];
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn test_tensors() -> Vec<TestTensor> {
    vec![
        tensor("token_embd.weight", &[3, 2], WeightFormat::F32, 1),
        tensor("blk.0.attn_q.weight", &[64, 3], WeightFormat::Q8_0, 2),
        tensor("blk.0.ffn_down.weight", &[256, 2], WeightFormat::Q4_K, 3),
        tensor("output_norm.weight", &[5], WeightFormat::F16, 4),
        tensor(
            "blk.0.ffn_up_exps.weight",
            &[4, 3, 2],
            WeightFormat::BF16,
            5,
        ),
        tensor(
            "blk.0.ffn_gate_exps.weight",
            &[256, 1, 2, 1],
            WeightFormat::Q6_K,
            6,
        ),
    ]
}

/// A scratch directory per test (tests run in parallel), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("edgeseek-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens `bytes` as a file; a broken file must be rejected well within a second (a hang or
/// a giant allocation driven by a bogus count would blow this).
fn open_timed(
    scratch: &Scratch,
    name: &str,
    bytes: &[u8],
) -> (PathBuf, edgeseek::Result<GgufFile>) {
    let path = scratch.write(name, bytes);
    let start = Instant::now();
    let result = GgufFile::open(&path);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{name}: open took {:?}",
        start.elapsed()
    );
    (path, result)
}

/// Asserts a BadFile for this file whose message contains every needle.
fn expect_bad(scratch: &Scratch, name: &str, bytes: &[u8], needles: &[&str]) {
    match open_timed(scratch, name, bytes) {
        (path, Err(Error::BadFile { path: p, problem })) => {
            if std::env::var_os("SHOW_ERRORS").is_some() {
                eprintln!("{name}: {problem}");
            }
            assert_eq!(p, path);
            for n in needles {
                assert!(
                    problem.contains(n),
                    "{name}: {problem:?} should mention {n:?}"
                );
            }
        }
        (_, other) => panic!("{name}: expected BadFile, got {other:?}"),
    }
}

fn expect_unsupported(scratch: &Scratch, name: &str, bytes: &[u8], needles: &[&str]) {
    match open_timed(scratch, name, bytes) {
        (path, Err(Error::Unsupported { path: p, what })) => {
            if std::env::var_os("SHOW_ERRORS").is_some() {
                eprintln!("{name}: {what}");
            }
            assert_eq!(p, path);
            for n in needles {
                assert!(what.contains(n), "{name}: {what:?} should mention {n:?}");
            }
        }
        (_, other) => panic!("{name}: expected Unsupported, got {other:?}"),
    }
}

// ---- Valid files ----

#[test]
fn valid_v2_and_v3_files_parse_completely() {
    let scratch = Scratch::new("valid");
    for version in [2, 3] {
        for alignment in [None, Some(64u32), Some(1)] {
            let mut metadata = all_types_metadata();
            if let Some(a) = alignment {
                metadata.push(("general.alignment".to_string(), MetaValue::U32(a)));
            }
            let tensors = test_tensors();
            let bytes = build(version, &metadata, &tensors);
            let name = format!("v{version}-{alignment:?}.gguf");
            let (path, result) = open_timed(&scratch, &name, &bytes);
            let f = result.unwrap_or_else(|e| panic!("{name}: {e}"));

            assert_eq!(f.path(), path);
            assert_eq!(f.version(), version);
            assert_eq!(f.file_size(), bytes.len() as u64);
            assert_eq!(f.bytes(), &bytes[..]);
            let alignment = alignment.map_or(32, u64::from);
            assert_eq!(f.alignment(), alignment);
            assert_eq!(f.data_offset() % alignment, 0);
            assert_eq!(
                f.metadata(),
                &metadata[..],
                "{name}: metadata in file order"
            );

            assert_eq!(f.tensors().len(), tensors.len());
            for (info, t) in f.tensors().iter().zip(&tensors) {
                assert_eq!(info.name, t.name);
                assert_eq!(info.dims, t.dims);
                assert_eq!(info.format, t.format);
                assert_eq!(info.size, t.data.len() as u64);
                assert_eq!(info.offset % alignment, 0, "{}", t.name);
                assert_eq!(
                    f.tensor_bytes(&info.name).unwrap(),
                    &t.data[..],
                    "{name}: {} data",
                    t.name
                );
                assert_eq!(f.tensor(t.name).map(|i| i.offset), Some(info.offset));
                assert_eq!(info.n_cols(), t.dims[0]);
                assert_eq!(info.n_rows() * info.n_cols(), info.n_elements());
            }
            assert!(f.tensor("missing.weight").is_none());
            let experts = f.tensor("blk.0.ffn_up_exps.weight").unwrap();
            assert_eq!(
                (experts.n_cols(), experts.n_rows(), experts.n_elements()),
                (4, 6, 24)
            );
        }
    }
}

#[test]
fn typed_getters_convert_or_name_the_key_and_type() {
    let scratch = Scratch::new("getters");
    let bytes = build(3, &all_types_metadata(), &[]);
    let (_, f) = open_timed(&scratch, "getters.gguf", &bytes);
    let f = f.unwrap();

    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("test.u8").unwrap(), Some(200));
    assert_eq!(f.get_u32("test.u32").unwrap(), Some(4_000_000_000));
    assert_eq!(f.get_u32("test.i32_positive").unwrap(), Some(4096));
    assert_eq!(f.get_u64("test.u64").unwrap(), Some(1 << 40));
    assert_eq!(f.get_f32("test.f32").unwrap(), Some(1e-6));
    assert_eq!(f.get_f32("test.f64").unwrap(), Some(10000.5));
    assert_eq!(f.get_bool("test.true").unwrap(), Some(true));
    assert_eq!(f.get_str("test.str").unwrap(), Some("héllo ✓ \u{0}"));
    assert_eq!(f.get_array("test.u32s").unwrap().map(|a| a.len()), Some(3));
    assert_eq!(f.get("test.i8"), Some(&MetaValue::I8(-100)));
    assert_eq!(f.get_u32("absent.key").unwrap(), None);
    assert_eq!(f.get_str("absent.key").unwrap(), None);

    let wrong = [
        f.get_u32("test.i32").unwrap_err(),
        f.get_u32("test.u64").unwrap_err(),
        f.get_u32("test.str").unwrap_err(),
        f.get_f32("test.u32").unwrap_err(),
        f.get_str("test.strs").unwrap_err(),
        f.get_bool("test.u8").unwrap_err(),
    ];
    let found = [
        "i32 -2000000000",
        "u64 1099511627776",
        "a string",
        "u32",
        "an array of 3",
        "u8",
    ];
    for (e, found) in wrong.iter().zip(found) {
        let Error::BadFile { problem, .. } = e else {
            panic!("expected BadFile, got {e:?}")
        };
        assert!(
            problem.contains("metadata key 'test.") && problem.contains(found),
            "{problem}"
        );
    }

    let bytes = build(3, &[("general.name".to_string(), s("x"))], &[]);
    let (_, f) = open_timed(&scratch, "no-arch.gguf", &bytes);
    let err = f.unwrap().architecture().unwrap_err();
    assert!(
        matches!(&err, Error::BadFile { problem, .. } if problem.contains("general.architecture"))
    );
}

// ---- Broken files ----

#[test]
fn bad_magic_is_not_a_gguf_file() {
    let scratch = Scratch::new("magic");
    let mut bytes = build(3, &all_types_metadata(), &test_tensors());
    bytes[..4].copy_from_slice(b"GGML");
    expect_bad(&scratch, "magic.gguf", &bytes, &["not a GGUF file", "GGML"]);
}

#[test]
fn empty_file_is_bad_file_saying_so() {
    let scratch = Scratch::new("empty");
    expect_bad(
        &scratch,
        "empty.gguf",
        &[],
        &["the file is empty (0 bytes)"],
    );
}

/// An `Io` error for `path` whose message contains every needle.
fn expect_io(path: &Path, needles: &[&str]) {
    let start = Instant::now();
    let result = GgufFile::open(path);
    assert!(start.elapsed() < Duration::from_secs(1), "{path:?}");
    let Err(err @ Error::Io { path: p, .. }) = &result else {
        panic!("{}: expected an Io error, got {result:?}", path.display())
    };
    assert_eq!(p, path);
    let message = err.to_string();
    for n in needles {
        assert!(message.contains(n), "{message:?} should mention {n:?}");
    }
}

#[test]
fn directory_is_refused_as_not_a_file() {
    let scratch = Scratch::new("dir");
    // Before: "No such device (os error 19)", mmap's errno for a directory.
    let dir = scratch.0.join("some_model_dir");
    std::fs::create_dir_all(&dir).unwrap();
    expect_io(
        &dir,
        &[
            "some_model_dir",
            "is a directory, not a file",
            "expected a GGUF model file (.gguf)",
        ],
    );
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_without_blocking() {
    expect_io(
        Path::new("/dev/null"),
        &["/dev/null", "is a character device, not a regular file"],
    );
    // Opening a FIFO for reading blocks until a writer comes: the check must come before
    // the open. The open runs on a thread so that a regression fails instead of hanging.
    let scratch = Scratch::new("fifo");
    let fifo = scratch.0.join("model.gguf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(GgufFile::open(&path).map(|_| ())));
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Err(e)) => {
            let message = e.to_string();
            assert!(
                message.contains("model.gguf") && message.contains("is a FIFO (named pipe)"),
                "{message}"
            );
        }
        other => panic!("opening a FIFO: expected an error at once, got {other:?}"),
    }
}

#[test]
fn unsupported_versions_are_named() {
    let scratch = Scratch::new("versions");
    let mut w = Writer::default();
    w.header(1, 0, 0);
    expect_unsupported(&scratch, "v1.gguf", &w.buf, &["version 1"]);
    let mut w = Writer::default();
    w.header(3u32.swap_bytes(), 0, 0);
    expect_unsupported(&scratch, "big-endian.gguf", &w.buf, &["big-endian"]);
    let mut w = Writer::default();
    w.header(4, 0, 0);
    expect_unsupported(&scratch, "v4.gguf", &w.buf, &["version 4"]);
}

#[test]
fn truncated_header_is_bad_file() {
    let scratch = Scratch::new("trunc-header");
    let bytes = build(3, &all_types_metadata(), &test_tensors());
    expect_bad(
        &scratch,
        "trunc10.gguf",
        &bytes[..10],
        &["tensor count", "truncated"],
    );
    expect_bad(
        &scratch,
        "trunc20.gguf",
        &bytes[..20],
        &["metadata count", "truncated"],
    );
}

#[test]
fn every_truncation_is_rejected_without_panic() {
    // The last tensor ends at the end of the file, so every proper prefix is broken: in the
    // header, the metadata, the tensor table, the padding or the tensor data.
    let scratch = Scratch::new("trunc-all");
    let bytes = build(3, &all_types_metadata(), &test_tensors());
    for len in 0..bytes.len() {
        match open_timed(&scratch, "prefix.gguf", &bytes[..len]) {
            (_, Err(Error::BadFile { .. })) => {}
            (_, other) => panic!("prefix of {len} bytes: expected BadFile, got {other:?}"),
        }
    }
}

#[test]
fn truncated_tensor_data_names_the_tensor() {
    let scratch = Scratch::new("trunc-data");
    let bytes = build(3, &all_types_metadata(), &test_tensors());
    let short = &bytes[..bytes.len() - 1];
    let needles = [
        "blk.0.ffn_gate_exps.weight",
        "runs past the end of the file",
        "size",
    ];
    expect_bad(&scratch, "short.gguf", short, &needles);
}

#[test]
fn huge_tensor_count_fails_before_allocating() {
    let scratch = Scratch::new("tensor-count");
    let mut w = Writer::default();
    w.header(3, 1 << 40, 0).raw(&[0; 64]);
    expect_bad(
        &scratch,
        "count.gguf",
        &w.buf,
        &["tensor count 1099511627776"],
    );
    let mut w = Writer::default();
    w.header(3, 0, 1 << 40).raw(&[0; 64]);
    expect_bad(
        &scratch,
        "kv-count.gguf",
        &w.buf,
        &["metadata count 1099511627776"],
    );
}

#[test]
fn huge_string_length_fails_before_allocating() {
    let scratch = Scratch::new("string-len");
    let mut w = Writer::default();
    w.header(3, 0, 1).u64(1 << 62).raw(b"general.architecture");
    expect_bad(
        &scratch,
        "key.gguf",
        &w.buf,
        &["string length 4611686018427387904", "past the end"],
    );

    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("general.name")
        .u32(8)
        .u64(1 << 62)
        .raw(b"x");
    expect_bad(
        &scratch,
        "value.gguf",
        &w.buf,
        &["general.name", "string length 4611686018427387904"],
    );

    // An array of 2^62 strings, and a string inside an array.
    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(1 << 62)
        .raw(&[0; 32]);
    expect_bad(
        &scratch,
        "array.gguf",
        &w.buf,
        &["tokenizer.ggml.tokens", "array length"],
    );
    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(2)
        .str("a")
        .u64(1 << 62);
    expect_bad(
        &scratch,
        "array-elem.gguf",
        &w.buf,
        &["tokenizer.ggml.tokens'[1]", "string length"],
    );
}

/// A file with one tensor info as given and `data_len` bytes of data after the padding.
fn one_tensor(dims: &[u64], ggml_type: u32, offset: u64, data_len: usize) -> Vec<u8> {
    let mut w = Writer::default();
    w.header(3, 1, 0)
        .tensor_info("x.weight", dims, ggml_type, offset)
        .pad(32);
    w.raw(&vec![0; data_len]);
    w.buf
}

#[test]
fn tensor_offset_past_end_of_file_is_bad_file() {
    let scratch = Scratch::new("offset");
    let bytes = one_tensor(&[8], 0, 1 << 20, 32);
    expect_bad(
        &scratch,
        "past.gguf",
        &bytes,
        &["'x.weight'", "runs past the end of the file"],
    );
    // An offset that overflows u64 when added to the data section start (and is aligned).
    let bytes = one_tensor(&[8], 0, u64::MAX - 31, 32);
    expect_bad(
        &scratch,
        "overflow.gguf",
        &bytes,
        &["'x.weight'", "overflows"],
    );
    let bytes = one_tensor(&[4], 0, 4, 32);
    expect_bad(
        &scratch,
        "misaligned.gguf",
        &bytes,
        &["'x.weight'", "not a multiple of the alignment"],
    );
    // A valid tensor just fits.
    let bytes = one_tensor(&[8], 0, 0, 32);
    assert!(open_timed(&scratch, "fits.gguf", &bytes).1.is_ok());
}

#[test]
fn unsupported_weight_type_is_named() {
    let scratch = Scratch::new("wtype");
    let bytes = one_tensor(&[256], 39, 0, 1024);
    let needles = ["'x.weight'", "MXFP4 (39)", "Q4_K"];
    expect_unsupported(&scratch, "mxfp4.gguf", &bytes, &needles);
    let bytes = one_tensor(&[256], 34, 0, 1024);
    expect_unsupported(&scratch, "tq1.gguf", &bytes, &["TQ1_0 (34)"]);
    let bytes = one_tensor(&[256], 1000, 0, 1024);
    expect_unsupported(&scratch, "unknown.gguf", &bytes, &["unknown (1000)"]);
}

#[test]
fn bad_tensor_shapes_are_bad_file() {
    let scratch = Scratch::new("shapes");
    let q8 = WeightFormat::Q8_0.ggml_type();
    let cases: [(&str, Vec<u8>, &[&str]); 6] = [
        (
            "partial-block",
            one_tensor(&[33], q8, 0, 64),
            &["33 columns", "Q8_0 block size 32"],
        ),
        (
            "five-dims",
            one_tensor(&[1, 1, 1, 1, 1], 0, 0, 32),
            &["5 dimensions"],
        ),
        ("zero-dims", one_tensor(&[], 0, 0, 32), &["0 dimensions"]),
        (
            "empty-dim",
            one_tensor(&[8, 0], 0, 0, 32),
            &["dimension 1 = 0"],
        ),
        (
            "overflow",
            one_tensor(&[1 << 32, 1 << 32], 0, 0, 32),
            &["overflows 64 bits"],
        ),
        (
            "negative",
            one_tensor(&[u64::MAX], 0, 0, 32),
            &["dimension 0 = 18446744073709551615"],
        ),
    ];
    for (name, bytes, needles) in cases {
        expect_bad(&scratch, name, &bytes, needles);
    }
}

#[test]
fn duplicate_names_are_bad_file() {
    let scratch = Scratch::new("dups");
    let mut w = Writer::default();
    w.header(3, 2, 0)
        .tensor_info("a", &[8], 0, 0)
        .tensor_info("a", &[8], 0, 32)
        .pad(32);
    w.raw(&[0; 64]);
    expect_bad(
        &scratch,
        "tensors.gguf",
        &w.buf,
        &["tensor name 'a' appears twice"],
    );
    let mut w = Writer::default();
    w.header(3, 0, 2)
        .kv("k", &MetaValue::U8(1))
        .kv("k", &MetaValue::U8(2));
    expect_bad(
        &scratch,
        "keys.gguf",
        &w.buf,
        &["metadata key 'k' appears twice"],
    );
}

#[test]
fn bad_alignment_is_bad_file() {
    let scratch = Scratch::new("alignment");
    for (name, value) in [
        ("48", MetaValue::U32(48)),
        ("0", MetaValue::U32(0)),
        ("2^32", MetaValue::U64(1 << 32)),
        ("string", s("32")),
    ] {
        let metadata = [("general.alignment".to_string(), value)];
        let bytes = build(3, &metadata, &[]);
        expect_bad(
            &scratch,
            name,
            &bytes,
            &["general.alignment", "power of two"],
        );
    }
}

#[test]
fn bad_metadata_encoding_is_bad_file() {
    let scratch = Scratch::new("meta");
    let mut w = Writer::default();
    w.header(3, 0, 1).str("k").u32(13).u32(0);
    expect_bad(
        &scratch,
        "type.gguf",
        &w.buf,
        &["metadata 'k'", "unknown value type 13"],
    );

    let mut w = Writer::default();
    w.header(3, 0, 1).str("k").u32(9).u32(99).u64(1).u32(0);
    expect_bad(
        &scratch,
        "elem-type.gguf",
        &w.buf,
        &["metadata 'k'", "unknown value type 99"],
    );

    let mut w = Writer::default();
    w.header(3, 0, 1).u64(2).raw(&[0xC3, 0x28]).u32(0).raw(&[1]);
    expect_bad(
        &scratch,
        "utf8-key.gguf",
        &w.buf,
        &["metadata entry #0 key", "not UTF-8"],
    );

    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("general.name")
        .u32(8)
        .u64(1)
        .raw(&[0xFF]);
    expect_bad(
        &scratch,
        "utf8-value.gguf",
        &w.buf,
        &["general.name", "not UTF-8"],
    );

    // Arrays nested 100 deep: refused at a fixed depth, not by recursing without bound.
    let mut w = Writer::default();
    w.header(3, 0, 1).str("deep").u32(9);
    for _ in 0..100 {
        w.u32(9).u64(1);
    }
    w.u32(0).u64(0);
    expect_bad(
        &scratch,
        "deep.gguf",
        &w.buf,
        &["metadata 'deep'", "nests arrays"],
    );
}

#[test]
fn corrupted_header_bytes_never_panic() {
    // Overwrite each byte before the tensor data with values that flip counts, lengths and
    // type ids to extremes; whatever the reader concludes, it must return (fast).
    let scratch = Scratch::new("corrupt");
    let good = build(3, &all_types_metadata(), &test_tensors());
    let table_end = {
        let (_, f) = open_timed(&scratch, "good.gguf", &good);
        f.unwrap().data_offset() as usize
    };
    for at in 0..table_end {
        for v in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
            if good[at] == v {
                continue;
            }
            let mut bytes = good.clone();
            bytes[at] = v;
            let _ = open_timed(&scratch, "corrupt.gguf", &bytes).1;
        }
    }
}

#[test]
fn missing_file_is_io_error() {
    let path = Path::new("/nonexistent/edgeseek/model.gguf");
    match GgufFile::open(path) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Io, got {other:?}"),
    }
}

// ---- Found by tests/gguf_mutation.rs ----

#[test]
fn one_byte_arrays_cannot_take_32x_the_file_in_memory() {
    // Every u8 in an array becomes a 32-byte MetaValue: 2 MiB of them would take 64 MiB.
    // Metadata may take 8 bytes per file byte plus 1 MiB, charged before allocating.
    let scratch = Scratch::new("u8-array");
    let n = 2 << 20;
    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("test.bytes")
        .u32(9)
        .u32(0)
        .u64(n)
        .raw(&vec![7; n as usize]);
    expect_unsupported(
        &scratch,
        "u8s.gguf",
        &w.buf,
        &[
            "metadata 'test.bytes'",
            "bytes of memory",
            "8 per file byte",
        ],
    );
    // The same bytes as u32 values take 8x: inside the budget, so they load.
    let mut w = Writer::default();
    w.header(3, 0, 1)
        .str("test.words")
        .u32(9)
        .u32(4)
        .u64(n / 4)
        .raw(&vec![7; n as usize]);
    let (_, f) = open_timed(&scratch, "u32s.gguf", &w.buf);
    let f = f.unwrap();
    assert_eq!(
        f.get_array("test.words").unwrap().unwrap().len(),
        n as usize / 4
    );
}

#[test]
fn keys_are_quoted_short_and_escaped_in_errors() {
    // A corrupt length can turn megabytes of metadata into one "key"; the error quotes
    // 64 characters of it, control characters escaped, and says how long it is.
    let scratch = Scratch::new("long-key");
    let key = "k\n".repeat(1000);
    let mut w = Writer::default();
    w.header(3, 0, 1).str(&key).u32(13).u32(0);
    expect_bad(
        &scratch,
        "long-key.gguf",
        &w.buf,
        &[
            "metadata 'k\\nk\\n",
            "...(2000 bytes)'",
            "unknown value type 13",
        ],
    );
    let Err(Error::BadFile { problem, .. }) = open_timed(&scratch, "again.gguf", &w.buf).1 else {
        panic!("expected BadFile")
    };
    assert!(problem.len() < 200, "{problem}");
}

/// A model fixture with the u32 value of metadata `key` replaced (the key as stored: u64
/// length and bytes, then the u32 type and the value).
fn fixture_with_u32(fixture: &str, key: &str, value: u32) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(fixture);
    let mut bytes = std::fs::read(&path).unwrap();
    let mut stored = (key.len() as u64).to_le_bytes().to_vec();
    stored.extend_from_slice(key.as_bytes());
    stored.extend_from_slice(&4u32.to_le_bytes());
    let at = bytes
        .windows(stored.len())
        .position(|w| w == stored)
        .unwrap_or_else(|| panic!("{fixture}: no u32 '{key}'"))
        + stored.len();
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    bytes
}

fn config_error(scratch: &Scratch, name: &str, bytes: &[u8]) -> Error {
    let (_, f) = open_timed(scratch, name, bytes);
    let f = f.unwrap();
    let start = Instant::now();
    let err = edgeseek::Config::from_gguf(&f).expect_err(name);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{name}: {:?}",
        start.elapsed()
    );
    err
}

#[test]
fn config_widths_that_overflow_u32_are_errors_not_panics() {
    let scratch = Scratch::new("config-overflow");
    // kv_lora_rank + the rope width overflowed u32 in the MLA check: a debug-build panic.
    let bytes = fixture_with_u32(
        "deepseek2-v3-Q4_K_M.gguf",
        "deepseek2.attention.kv_lora_rank",
        u32::MAX - 7,
    );
    let err = config_error(&scratch, "mla.gguf", &bytes);
    assert!(
        matches!(&err, Error::Unsupported { what, .. } if what.contains("MLA shapes kv_lora_rank 4294967288")),
        "{err}"
    );
    // 2^30 heads of 128 passed, then Config::q_dim() overflowed u32.
    let bytes = fixture_with_u32("qwen3-Q4_0.gguf", "qwen3.attention.head_count", 1 << 30);
    let err = config_error(&scratch, "heads.gguf", &bytes);
    assert!(
        matches!(&err, Error::BadFile { problem, .. } if problem.contains("1073741824 attention heads of head dimension 128 overflow 32 bits")),
        "{err}"
    );
}

#[test]
fn block_count_is_checked_before_looping_over_layers() {
    // A MoE model with no dense lead layers used to look at all 2^32 - 1 layers for a
    // dense one before the block count was checked.
    let scratch = Scratch::new("block-count");
    let bytes = fixture_with_u32("qwen3moe-Q4_K_M.gguf", "qwen3moe.block_count", u32::MAX);
    let err = config_error(&scratch, "layers.gguf", &bytes);
    assert!(
        matches!(&err, Error::BadFile { problem, .. } if problem.contains("block count 4294967295")),
        "{err}"
    );
}
