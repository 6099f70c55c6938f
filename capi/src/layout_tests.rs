//! Every struct of include/edgeseek.h has the layout the C compiler gives it: the
//! header's structs are read (tests/common/header.rs), a C program printing the size of
//! each struct and the offset, size and type of each field is generated, compiled with
//! the system `cc` and run, and its numbers are compared with the `#[repr(C)]` structs.
//! A field added, removed, reordered or retyped on one side only fails here.

#[path = "../tests/common/header.rs"]
#[allow(dead_code)]
mod header;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::mem::{offset_of, size_of};

use crate::{EsGenerateOptions, EsLoadOptions, EsModelInfo, EsSummary};

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

/// The same map from the C compiler, plus the C-declared types mapped to Rust's names.
fn c_layouts() -> BTreeMap<String, String> {
    let structs = header::structs(&header::header_code());
    assert!(
        structs.len() >= 4,
        "the header's structs were not found: {structs:?}"
    );
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"edgeseek.h\"\n");
    c.push_str("int main(void) {\n");
    let mut types = BTreeMap::new();
    for (name, fields) in &structs {
        writeln!(c, "    printf(\"{name} %zu\\n\", sizeof({name}));").unwrap();
        for f in fields {
            writeln!(
                c,
                "    printf(\"{name}.{field} %zu %zu\\n\", offsetof({name}, {field}), sizeof((({name} *)0)->{field}));",
                field = f.name
            )
            .unwrap();
            types.insert(format!("{name}.{}", f.name), rust_type_of(&f.ty));
        }
    }
    c.push_str("    return 0;\n}\n");

    let dir = std::env::temp_dir().join(format!("edgeseek-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, c).unwrap();
    let include = header::repo_root().join("include");
    let cc = std::process::Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `cc` ({e}): install gcc or clang"));
    assert!(
        cc.status.success(),
        "cc failed on the layout program:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = std::process::Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (key, value) = l.split_once(' ').unwrap();
            let value = match types.get(key) {
                Some(ty) => format!("{value} {ty}"),
                None => value.to_string(),
            };
            (key.to_string(), value)
        })
        .collect()
}

#[test]
fn every_struct_has_the_c_compilers_layout() {
    let rust = rust_layouts();
    let c = c_layouts();
    let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    assert!(
        only(&c, &rust).is_empty(),
        "in the header only: {:?}",
        only(&c, &rust)
    );
    assert!(
        only(&rust, &c).is_empty(),
        "in Rust only: {:?}",
        only(&rust, &c)
    );
    let differ: Vec<String> = c
        .iter()
        .filter(|(k, v)| rust[*k] != **v)
        .map(|(k, v)| format!("{k}: C {v}, Rust {}", rust[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "layouts differ (offset size type):\n{}",
        differ.join("\n")
    );
}
