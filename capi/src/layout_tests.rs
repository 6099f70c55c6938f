//! Every struct and constant of include/edgeseek.h is what the C compiler makes of it:
//! the header's structs and `ES_*` constants are read (tests/common/header.rs), a C
//! program printing the size of each struct, the offset, size and type of each field
//! and the value of each constant is generated, compiled with the system C compiler
//! (`$CC`, else `cc`) and run, and its numbers are compared with the `#[repr(C)]`
//! structs and the Rust constants. A field added, removed, reordered or retyped, or a
//! constant added or renumbered, on one side only fails here.

#[path = "../tests/common/header.rs"]
#[allow(dead_code)]
mod header;

#[path = "../tests/common/compiler.rs"]
#[allow(dead_code)]
mod compiler;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

use crate::{options, session, status};
use crate::{EsEventKind, EsGenerateOptions, EsLoadOptions, EsModelInfo, EsSummary};

/// The Rust type a C field type must be, as `std::any::type_name` spells it, with
/// `c_char` for whichever of i8/u8 the target's char is.
fn rust_type_of(c: &str) -> &'static str {
    match c {
        "uint32_t" => "u32",
        "int32_t" | "int" => "i32",
        "uint64_t" => "u64",
        "size_t" => "usize",
        "float" => "f32",
        "double" => "f64",
        "const char*" => "*const c_char",
        "const char*const*" => "*const *const c_char",
        other => panic!("no Rust type known for the C type `{other}`: add it here"),
    }
}

fn type_name_of<T, F>(_: fn(&T) -> &F) -> String {
    let char_name = std::any::type_name::<std::ffi::c_char>();
    std::any::type_name::<F>().replace(char_name, "c_char")
}

/// "Struct" -> size, "Struct.field" -> "offset size type", for the Rust structs.
macro_rules! rust_layout {
    ($map:ident, $ty:ident { $($field:ident),* $(,)? }) => {
        $map.insert(stringify!($ty).to_string(), size_of::<$ty>().to_string());
        $(
            let field_size = {
                fn size<T, F>(_: fn(&T) -> &F) -> usize { size_of::<F>() }
                size(|s: &$ty| &s.$field)
            };
            $map.insert(
                format!("{}.{}", stringify!($ty), stringify!($field)),
                format!(
                    "{} {} {}",
                    offset_of!($ty, $field),
                    field_size,
                    type_name_of(|s: &$ty| &s.$field)
                ),
            );
        )*
    };
}

fn rust_layouts() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    rust_layout!(
        m,
        EsLoadOptions {
            struct_size,
            n_ctx,
            max_batch,
            expert_cache,
            expert_cache_bytes,
            max_resident_bytes,
            adapter,
            eviction,
            no_f16,
            downlevel,
            f32_activations,
            prefetch,
        }
    );
    rust_layout!(
        m,
        EsModelInfo {
            struct_size,
            n_ctx,
            arch,
            chat_template,
            adapter,
            opens_think,
            n_ctx_train,
            n_vocab,
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            n_expert,
            n_expert_used,
            gpu_weights_bytes,
            gpu_expert_cache_bytes,
            gpu_kv_bytes,
            gpu_scratch_bytes,
            gpu_stream_ring_bytes,
            dense_streamed_bytes,
        }
    );
    rust_layout!(
        m,
        EsGenerateOptions {
            struct_size,
            max_tokens,
            temperature,
            top_k,
            top_p,
            min_p,
            repeat_penalty,
            repeat_last_n,
            seed,
            stop,
            n_stop,
        }
    );
    rust_layout!(
        m,
        EsSummary {
            struct_size,
            stop,
            prompt_tokens,
            reused_tokens,
            generated_tokens,
            prefill_tok_s,
            decode_tok_s,
        }
    );
    m
}

/// Every `ES_*` constant on the Rust side, by the header's name. Listed by hand (Rust
/// cannot enumerate a module's constants); the test fails on any header constant
/// missing here, so a new one in the header cannot go unchecked.
fn rust_constants() -> BTreeMap<String, String> {
    let constants: &[(&str, i32)] = &[
        ("ES_OK", status::ES_OK),
        ("ES_ERR_INVALID_ARGUMENT", status::ES_ERR_INVALID_ARGUMENT),
        ("ES_ERR_BUSY", status::ES_ERR_BUSY),
        ("ES_ERR_MODEL", status::ES_ERR_MODEL),
        ("ES_ERR_GENERATION", status::ES_ERR_GENERATION),
        ("ES_ERR_BUFFER_TOO_SMALL", status::ES_ERR_BUFFER_TOO_SMALL),
        ("ES_ERR_INTERNAL", status::ES_ERR_INTERNAL),
        ("ES_EXPERT_CACHE_AUTO", options::ES_EXPERT_CACHE_AUTO),
        ("ES_EXPERT_CACHE_MIN", options::ES_EXPERT_CACHE_MIN),
        ("ES_EXPERT_CACHE_BYTES", options::ES_EXPERT_CACHE_BYTES),
        ("ES_EVICTION_LRU", options::ES_EVICTION_LRU),
        ("ES_EVICTION_FREQUENCY", options::ES_EVICTION_FREQUENCY),
        ("ES_EVENT_TEXT", EsEventKind::Text as i32),
        ("ES_EVENT_THINK_START", EsEventKind::ThinkStart as i32),
        ("ES_EVENT_THINK_END", EsEventKind::ThinkEnd as i32),
        ("ES_EVENT_DONE", EsEventKind::Done as i32),
        (
            "ES_STOP_END_OF_GENERATION",
            session::ES_STOP_END_OF_GENERATION,
        ),
        ("ES_STOP_STOP_STRING", session::ES_STOP_STOP_STRING),
        ("ES_STOP_MAX_TOKENS", session::ES_STOP_MAX_TOKENS),
        ("ES_STOP_CANCELLED", session::ES_STOP_CANCELLED),
        ("ES_STOP_CONTEXT_FULL", session::ES_STOP_CONTEXT_FULL),
    ];
    constants
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// What the C compiler says: the structs' map ("Struct" -> size, "Struct.field" ->
/// "offset size type", the C-declared type mapped to Rust's name) and the constants'
/// ("ES_NAME" -> value). Compiled and run once for both tests.
fn c_program() -> &'static (BTreeMap<String, String>, BTreeMap<String, String>) {
    static OUTPUT: OnceLock<(BTreeMap<String, String>, BTreeMap<String, String>)> = OnceLock::new();
    OUTPUT.get_or_init(compile_and_run)
}

fn compile_and_run() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let code = header::header_code();
    let structs = header::structs(&code);
    assert!(
        structs.len() >= 4,
        "the header's structs were not found: {structs:?}"
    );
    let constants = header::constants(&code);
    assert!(
        constants.len() >= 20,
        "the header's constants were not found: {constants:?}"
    );
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"edgeseek.h\"\n");
    c.push_str("int main(void) {\n");
    let mut types = BTreeMap::new();
    for (name, fields) in &structs {
        writeln!(c, "    printf(\"struct {name} %zu\\n\", sizeof({name}));").unwrap();
        for f in fields {
            writeln!(
                c,
                "    printf(\"struct {name}.{field} %zu %zu\\n\", offsetof({name}, {field}), sizeof((({name} *)0)->{field}));",
                field = f.name
            )
            .unwrap();
            types.insert(format!("{name}.{}", f.name), rust_type_of(&f.ty));
        }
    }
    for name in &constants {
        // As a long: an enum constant is an int in C, whatever its enum's size.
        writeln!(c, "    printf(\"const {name} %ld\\n\", (long){name});").unwrap();
    }
    c.push_str("    return 0;\n}\n");

    let dir = std::env::temp_dir().join(format!("edgeseek-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, c).unwrap();
    compiler::compile(&header::repo_root().join("include"), &src, &exe, &[]);
    let run = std::process::Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "{} failed", exe.display());
    std::fs::remove_dir_all(&dir).ok();
    let mut layouts = BTreeMap::new();
    let mut values = BTreeMap::new();
    for line in String::from_utf8(run.stdout).unwrap().lines() {
        let (what, rest) = line.split_once(' ').unwrap();
        let (key, value) = rest.split_once(' ').unwrap();
        match what {
            "struct" => {
                let value = match types.get(key) {
                    Some(ty) => format!("{value} {ty}"),
                    None => value.to_string(),
                };
                layouts.insert(key.to_string(), value);
            }
            _ => {
                values.insert(key.to_string(), value.to_string());
            }
        }
    }
    (layouts, values)
}

/// Fails with what is on one side only and what differs.
fn assert_same(what: &str, c: &BTreeMap<String, String>, rust: &BTreeMap<String, String>) {
    let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    assert!(
        only(c, rust).is_empty(),
        "{what} in the header only: {:?}",
        only(c, rust)
    );
    assert!(
        only(rust, c).is_empty(),
        "{what} in Rust only: {:?}",
        only(rust, c)
    );
    let differ: Vec<String> = c
        .iter()
        .filter(|(k, v)| rust[*k] != **v)
        .map(|(k, v)| format!("{k}: C {v}, Rust {}", rust[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "{what} differ (C, then Rust):\n{}",
        differ.join("\n")
    );
}

#[test]
fn every_struct_has_the_c_compilers_layout() {
    // Values: "offset size type" of a field, the size of a struct.
    assert_same("layouts", &c_program().0, &rust_layouts());
}

#[test]
fn every_constant_of_the_header_has_the_rust_value() {
    assert_same("constants", &c_program().1, &rust_constants());
}
