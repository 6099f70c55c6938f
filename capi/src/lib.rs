//! The C ABI of edgeseek: `libedgeseek.so` / `libedgeseek.a`, declared by
//! include/edgeseek.h, which documents every function, ownership and threading.
//!
//! A package of its own (capi/) so that the Rust crate stays free of `extern "C"`,
//! raw pointers and C build concerns, and builds no C artifacts for Rust users. The
//! header is written by hand; tests/header.rs keeps it and these exports from drifting
//! apart (same function names, every declaration used by a C file compiled with
//! -Werror and linked against the library) and src/layout_tests.rs holds every struct
//! to the C compiler's layout.
//!
//! Rules of every function here: no panic crosses the boundary (each body runs under
//! `catch_unwind`; a panic is ES_ERR_INTERNAL), NULL and non-UTF-8 arguments are
//! ES_ERR_INVALID_ARGUMENT with a message, and freeing NULL does nothing.

mod model;
mod options;
mod session;
mod status;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;

use std::ffi::{c_char, c_int, CString};

use status::status_name;

pub use model::{es_model_free, es_model_info, es_model_load, es_tokenize, EsModel, EsModelInfo};
pub use options::{
    es_generate_options_default, es_load_options_default, EsGenerateOptions, EsLoadOptions,
};
pub use session::{
    es_session_cancel, es_session_chat, es_session_free, es_session_last_summary, es_session_new,
    es_session_reset, es_session_set_system, EsEventCallback, EsEventKind, EsSession, EsSummary,
};
pub use status::{
    ES_ERR_BUFFER_TOO_SMALL, ES_ERR_BUSY, ES_ERR_GENERATION, ES_ERR_INTERNAL,
    ES_ERR_INVALID_ARGUMENT, ES_ERR_MODEL, ES_OK,
};

/// The library's version ("0.1.0"), a static string.
#[no_mangle]
pub extern "C" fn es_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status code ("ES_ERR_BUSY"), a static string.
#[no_mangle]
pub extern "C" fn es_status_name(status: c_int) -> *const c_char {
    status_name(status).as_ptr()
}

/// # Safety
/// `s` is NULL or a string this library returned through `char **error`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn es_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: CString::into_raw made it (status::c_string) and the caller gives it up.
        drop(unsafe { CString::from_raw(s) });
    }
}
