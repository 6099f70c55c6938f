//! EsModel: a reference-counted cell around an edgeseek Model, with what the info
//! functions read captured at load (so they never touch the Model while a session
//! drives it), and es_tokenize.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use edgeseek_rs::{GgufFile, LoadOptions, Model, Tokenizer};

use crate::options::EsLoadOptions;
use crate::status::{pointer_call, silent_call, status_call, str_arg, Failure};
use crate::status::{ES_ERR_BUFFER_TOO_SMALL, ES_ERR_INVALID_ARGUMENT, ES_ERR_MODEL};

/// What es_model_info returns: filled at load, owned by the model.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsModelInfo {
    pub struct_size: u32,
    pub n_ctx: u32,
    pub arch: *const c_char,
    pub chat_template: *const c_char,
    pub adapter: *const c_char,
    pub opens_think: c_int,
    pub n_ctx_train: u32,
    pub n_vocab: u32,
    pub n_layer: u32,
    pub n_embd: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub n_expert: u32,
    pub n_expert_used: u32,
    pub gpu_weights_bytes: u64,
    pub gpu_expert_cache_bytes: u64,
    pub gpu_kv_bytes: u64,
    pub gpu_scratch_bytes: u64,
    pub gpu_stream_ring_bytes: u64,
    pub dense_streamed_bytes: u64,
}

/// The heap cell behind an `EsModel *`. C holds it as `Arc::into_raw`: es_model_free
/// drops the caller's reference and each live session holds another, so the Model is
/// dropped with the last of them, in whatever order the host frees them.
pub struct EsModel {
    /// Reached only through the one live session (see `session`), which makes a
    /// `&'static mut Model` from it; never read by the info functions.
    pub(crate) model: UnsafeCell<Model>,
    /// Address of the live session, 0 when there is none. One session at a time: two
    /// would be two `&mut Model`.
    pub(crate) session: Mutex<usize>,
    info: EsModelInfo,
    /// The strings `info` points to: heap buffers that do not move with the cell.
    _strings: [Option<CString>; 3],
    path: PathBuf,
    /// A second tokenizer for es_tokenize, built from the file on first use: the Model's
    /// own belongs to the session while one lives (`Tokenizer` is not Clone).
    tokenizer: OnceLock<Result<Tokenizer, String>>,
}

// SAFETY: the Model inside the UnsafeCell is touched only through the live session, of
// which there is at most one (`session` is the claim, taken under its lock), and that
// session serializes its calls with its own mutex: the Model moves between threads
// (Send) but is never shared (no Sync needed). `info` holds raw pointers, which are what
// keeps the auto traits away, but they point into `_strings`, immutable after load.
// The rest is shared for real and must be Sync on its own merits, which the compiler
// checks below rather than this impl assuming it: es_tokenize runs on any thread while
// others do, reading one Tokenizer through the OnceLock, and es_session_new takes the
// Mutex. Dropping the cell on whichever thread frees it last needs each field Send.
unsafe impl Sync for EsModel {}
unsafe impl Send for EsModel {}

const _: () = {
    const fn send<T: Send>() {}
    const fn sync<T: Sync>() {}
    send::<Model>();
    send::<Tokenizer>();
    // Concurrent es_tokenize calls share the tokenizer (`encode` takes &self).
    sync::<Tokenizer>();
    sync::<OnceLock<Result<Tokenizer, String>>>();
    sync::<Mutex<usize>>();
    send::<CString>();
    sync::<CString>();
    send::<PathBuf>();
    sync::<PathBuf>();
};

impl EsModel {
    fn load(path: &std::path::Path, load_options: &LoadOptions) -> Result<EsModel, Failure> {
        let model = Model::load(path, load_options).map_err(Failure::load)?;
        let cfg = model.config();
        let mem = model.memory();
        let arch = CString::new(cfg.arch.name()).ok();
        let template = model
            .chat_template()
            .and_then(|t| CString::new(t.name()).ok());
        let adapter = CString::new(model.device().adapter_name.replace('\0', " ")).ok();
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let info = EsModelInfo {
            struct_size: std::mem::size_of::<EsModelInfo>() as u32,
            n_ctx: model.n_ctx(),
            arch: ptr(&arch),
            chat_template: ptr(&template),
            adapter: ptr(&adapter),
            opens_think: model
                .chat_template()
                .is_some_and(|t| t.opens_think())
                .into(),
            n_ctx_train: cfg.n_ctx_train,
            n_vocab: cfg.n_vocab,
            n_layer: cfg.n_layer,
            n_embd: cfg.n_embd,
            n_head: cfg.n_head,
            n_head_kv: cfg.n_head_kv,
            n_expert: cfg.moe.as_ref().map_or(0, |m| m.n_expert),
            n_expert_used: cfg.moe.as_ref().map_or(0, |m| m.n_expert_used),
            gpu_weights_bytes: mem.weights,
            gpu_expert_cache_bytes: mem.expert_cache,
            gpu_kv_bytes: mem.kv_cache,
            gpu_scratch_bytes: mem.scratch,
            gpu_stream_ring_bytes: mem.stream_ring,
            dense_streamed_bytes: model.plan().dense_streamed,
        };
        Ok(EsModel {
            model: UnsafeCell::new(model),
            session: Mutex::new(0),
            info,
            _strings: [arch, template, adapter],
            path: path.to_path_buf(),
            tokenizer: OnceLock::new(),
        })
    }

    fn tokenizer(&self) -> Result<&Tokenizer, Failure> {
        let built = self.tokenizer.get_or_init(|| {
            // GgufFile's errors name the file; the tokenizer's do not.
            let file = GgufFile::open(&self.path).map_err(|e| e.to_string())?;
            Tokenizer::from_gguf(&file).map_err(|e| format!("{}: {e}", self.path.display()))
        });
        // The file was readable at load: failing now is the model's file (moved,
        // changed), not the caller's argument.
        built.as_ref().map_err(|e| Failure {
            status: ES_ERR_MODEL,
            message: format!("es_tokenize cannot build its tokenizer: {e}"),
        })
    }
}

/// The cell behind a C handle, borrowed for the call.
///
/// # Safety
/// `m` is NULL or a pointer es_model_load returned that es_model_free has not consumed.
pub(crate) unsafe fn model_ref<'a>(m: *const EsModel, what: &str) -> Result<&'a EsModel, Failure> {
    // SAFETY: by the caller's promise the Arc behind `m` is alive for the call.
    unsafe { m.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// A new reference to the cell behind a C handle (a session's).
///
/// # Safety
/// As [`model_ref`], and `m` is not NULL.
pub(crate) unsafe fn model_arc(m: *const EsModel) -> Arc<EsModel> {
    // SAFETY: `m` came from Arc::into_raw and its count is at least the caller's one.
    unsafe {
        Arc::increment_strong_count(m);
        Arc::from_raw(m)
    }
}

/// A path argument: any bytes on Unix (paths need not be UTF-8 there), UTF-8 elsewhere.
unsafe fn path_arg(p: *const c_char) -> Result<PathBuf, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        if p.is_null() {
            return Err(Failure::invalid("path is NULL"));
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's promise.
        let bytes = unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes();
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        Ok(PathBuf::from(unsafe { str_arg(p, "path") }?))
    }
}

/// # Safety
/// See include/edgeseek.h: `path` a C string, `opts` NULL or an initialized
/// EsLoadOptions, `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_model_load(
    path: *const c_char,
    opts: *const EsLoadOptions,
    error: *mut *mut c_char,
) -> *mut EsModel {
    unsafe {
        pointer_call("es_model_load", error, || {
            let path = path_arg(path)?;
            let options = EsLoadOptions::read(opts)?;
            let cell = EsModel::load(&path, &options)?;
            Ok(Arc::into_raw(Arc::new(cell)).cast_mut())
        })
    }
}

/// # Safety
/// `m` is NULL or a live handle from es_model_load, not used again by the caller.
#[no_mangle]
pub unsafe extern "C" fn es_model_free(m: *mut EsModel) {
    if m.is_null() {
        return;
    }
    // Dropping the Model (GPU buffers, device) could in principle panic in wgpu.
    silent_call("es_model_free", || {
        // SAFETY: the caller gives up its reference, which Arc::into_raw made.
        drop(unsafe { Arc::from_raw(m.cast_const()) });
    });
}

/// # Safety
/// `m` is NULL or a live handle from es_model_load.
#[no_mangle]
pub unsafe extern "C" fn es_model_info(m: *const EsModel) -> *const EsModelInfo {
    match unsafe { m.as_ref() } {
        Some(cell) => &cell.info,
        None => std::ptr::null(),
    }
}

/// # Safety
/// See include/edgeseek.h: `m` a live handle, `text` a C string, `ids` NULL or
/// `capacity` writable u32s, `n_tokens` writable, `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_tokenize(
    m: *const EsModel,
    text: *const c_char,
    add_special: c_int,
    ids: *mut u32,
    capacity: usize,
    n_tokens: *mut usize,
    error: *mut *mut c_char,
) -> c_int {
    unsafe {
        status_call("es_tokenize", error, || {
            let cell = model_ref(m, "model")?;
            let text = str_arg(text, "text")?;
            if n_tokens.is_null() {
                return Err(Failure::invalid("n_tokens is NULL"));
            }
            let encoded = cell
                .tokenizer()?
                .encode(text, add_special != 0, true)
                .map_err(Failure::generation)?;
            n_tokens.write(encoded.len());
            if ids.is_null() {
                if capacity != 0 {
                    return Err(Failure {
                        status: ES_ERR_INVALID_ARGUMENT,
                        message: format!("ids is NULL but capacity is {capacity}"),
                    });
                }
                return Ok(());
            }
            if encoded.len() > capacity {
                return Err(Failure {
                    status: ES_ERR_BUFFER_TOO_SMALL,
                    message: format!(
                        "the text has {} tokens; ids holds {capacity}",
                        encoded.len()
                    ),
                });
            }
            std::ptr::copy_nonoverlapping(encoded.as_ptr(), ids, encoded.len());
            Ok(())
        })
    }
}
