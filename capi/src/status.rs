//! Status codes, error messages handed to C, and the guard that keeps panics and Rust
//! errors on this side of the boundary.

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use edgeseek_rs::Error;

// The values of `EsStatus` in include/edgeseek.h. Functions return them as `int` (the
// issue's signatures), so they are constants rather than a Rust enum.
pub const ES_OK: c_int = 0;
pub const ES_ERR_INVALID_ARGUMENT: c_int = -1;
pub const ES_ERR_BUSY: c_int = -2;
pub const ES_ERR_MODEL: c_int = -3;
pub const ES_ERR_GENERATION: c_int = -4;
pub const ES_ERR_BUFFER_TOO_SMALL: c_int = -5;
pub const ES_ERR_INTERNAL: c_int = -6;

/// A failed call: the status it returns and the message `*error` receives.
#[derive(Debug)]
pub struct Failure {
    pub status: c_int,
    pub message: String,
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            status: ES_ERR_INVALID_ARGUMENT,
            message: message.into(),
        }
    }

    pub fn busy(message: impl Into<String>) -> Failure {
        Failure {
            status: ES_ERR_BUSY,
            message: message.into(),
        }
    }

    /// An edgeseek error while loading: the caller's options or the model's file/device.
    pub fn load(e: Error) -> Failure {
        Failure::classify(e, ES_ERR_MODEL)
    }

    /// An edgeseek error while generating or tokenizing.
    pub fn generation(e: Error) -> Failure {
        Failure::classify(e, ES_ERR_GENERATION)
    }

    fn classify(e: Error, otherwise: c_int) -> Failure {
        let status = match e {
            Error::Invalid(_) => ES_ERR_INVALID_ARGUMENT,
            Error::Internal(_) => ES_ERR_INTERNAL,
            _ => otherwise,
        };
        // edgeseek's Display names the file and the problem; Debug would not.
        Failure {
            status,
            message: e.to_string(),
        }
    }
}

/// The name of a status, as the header spells it (for es_status_name).
pub fn status_name(status: c_int) -> &'static CStr {
    match status {
        ES_OK => c"ES_OK",
        ES_ERR_INVALID_ARGUMENT => c"ES_ERR_INVALID_ARGUMENT",
        ES_ERR_BUSY => c"ES_ERR_BUSY",
        ES_ERR_MODEL => c"ES_ERR_MODEL",
        ES_ERR_GENERATION => c"ES_ERR_GENERATION",
        ES_ERR_BUFFER_TOO_SMALL => c"ES_ERR_BUFFER_TOO_SMALL",
        ES_ERR_INTERNAL => c"ES_ERR_INTERNAL",
        _ => c"unknown status",
    }
}

/// A message as a C string the caller frees with es_string_free. An interior NUL (it
/// cannot come from a C argument, but a message might quote file contents) would cut
/// the text short, so it is spelled out.
pub fn c_string(message: &str) -> *mut c_char {
    let text = message.replace('\0', "\\0");
    CString::new(text)
        .expect("interior NULs were replaced")
        .into_raw()
}

/// Runs `f`, turning a panic into an ES_ERR_INTERNAL failure: no unwinding may cross an
/// `extern "C"` function (Rust would abort the host process).
fn catch<T>(function: &str, f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    // The closures only touch state that is either rebuilt after a panic (a session's
    // state is restarted when its poisoned lock is taken) or dropped: unwind safety is
    // handled by hand, not by the marker traits.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Failure {
                status: ES_ERR_INTERNAL,
                message: format!("internal error (a bug in edgeseek) in {function}: {what}"),
            })
        }
    }
}

/// Stores the outcome in `*error` (when `error` is not NULL): NULL on success, an owned
/// message on failure.
///
/// # Safety
/// `error` is NULL or points to writable storage for a pointer.
unsafe fn report(error: *mut *mut c_char, failure: Option<&Failure>) {
    if error.is_null() {
        return;
    }
    let value = failure.map_or(std::ptr::null_mut(), |f| c_string(&f.message));
    // SAFETY: the caller promises `error` is writable when it is not NULL.
    unsafe { error.write(value) };
}

/// For functions that return a status: ES_OK or the failure's status, with `*error` set.
///
/// # Safety
/// As [`report`].
pub unsafe fn status_call(
    function: &str,
    error: *mut *mut c_char,
    f: impl FnOnce() -> Result<(), Failure>,
) -> c_int {
    match catch(function, f) {
        Ok(()) => {
            unsafe { report(error, None) };
            ES_OK
        }
        Err(failure) => {
            unsafe { report(error, Some(&failure)) };
            failure.status
        }
    }
}

/// For functions that return an object: the pointer, or NULL with `*error` set.
///
/// # Safety
/// As [`report`].
pub unsafe fn pointer_call<T>(
    function: &str,
    error: *mut *mut c_char,
    f: impl FnOnce() -> Result<*mut T, Failure>,
) -> *mut T {
    match catch(function, f) {
        Ok(ptr) => {
            unsafe { report(error, None) };
            ptr
        }
        Err(failure) => {
            unsafe { report(error, Some(&failure)) };
            std::ptr::null_mut()
        }
    }
}

/// For functions with no way to report (free, cancel): a panic is swallowed, because
/// aborting the host is worse than leaking what was being freed.
pub fn silent_call(function: &str, f: impl FnOnce()) {
    let _ = catch(function, || {
        f();
        Ok(())
    });
}

/// A required C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that stays valid for `'a`.
pub unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map_err(|e| {
        Failure::invalid(format!(
            "{what} is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}
