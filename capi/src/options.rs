//! EsLoadOptions and EsGenerateOptions: plain C structs, their defaults (the Rust
//! defaults, so C code never guesses them), and their checked conversion to edgeseek's
//! options.
//!
//! Every struct a caller passes in starts with `struct_size`, set by its
//! es_*_options_default. A library that grows a struct can then tell an older caller's
//! (smaller) struct from its own, and today's library catches a struct that was never
//! initialized by that function (its struct_size is garbage) instead of reading garbage
//! options. So `struct_size` is read alone, through the raw pointer, and the struct is
//! dereferenced as a whole only once its size is known to be this library's: a smaller
//! struct from another version is never read past its end.

use std::ffi::{c_char, c_int};
use std::mem::size_of;
use std::ptr::addr_of;

use edgeseek_rs::{
    DeviceOptions, Eviction, ExpertBudget, GenerateOptions, LoadOptions, SamplerOptions,
};

use crate::status::{str_arg, Failure};

// EsExpertCache
pub const ES_EXPERT_CACHE_AUTO: i32 = 0;
pub const ES_EXPERT_CACHE_MIN: i32 = 1;
pub const ES_EXPERT_CACHE_BYTES: i32 = 2;
// EsEviction
pub const ES_EVICTION_LRU: i32 = 0;
pub const ES_EVICTION_FREQUENCY: i32 = 1;

/// How to load a model (include/edgeseek.h documents each field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsLoadOptions {
    pub struct_size: u32,
    pub n_ctx: u32,
    pub max_batch: u32,
    /// EsExpertCache; an int32_t rather than the enum, whose size C leaves to the compiler
    /// and whose unknown values Rust must never read as an enum.
    pub expert_cache: i32,
    pub expert_cache_bytes: u64,
    pub max_resident_bytes: u64,
    pub adapter: *const c_char,
    /// EsEviction.
    pub eviction: i32,
    pub no_f16: c_int,
    pub downlevel: c_int,
    pub f32_activations: c_int,
    pub prefetch: c_int,
}

/// Options of one es_session_chat call (include/edgeseek.h documents each field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsGenerateOptions {
    pub struct_size: u32,
    pub max_tokens: u32,
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub repeat_last_n: u32,
    pub seed: u64,
    pub stop: *const *const c_char,
    pub n_stop: usize,
}

/// A u32 from a usize default; the Rust defaults are small, so this never saturates.
fn small(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Default for EsLoadOptions {
    fn default() -> Self {
        let d = LoadOptions::default();
        let (expert_cache, expert_cache_bytes) = match d.expert_cache_bytes {
            ExpertBudget::Auto => (ES_EXPERT_CACHE_AUTO, 0),
            ExpertBudget::Min => (ES_EXPERT_CACHE_MIN, 0),
            ExpertBudget::Bytes(b) => (ES_EXPERT_CACHE_BYTES, b),
        };
        EsLoadOptions {
            struct_size: size_of::<EsLoadOptions>() as u32,
            n_ctx: d.n_ctx.unwrap_or(0),
            max_batch: d.max_batch,
            expert_cache,
            expert_cache_bytes,
            max_resident_bytes: d.max_resident_bytes.unwrap_or(0),
            adapter: std::ptr::null(),
            eviction: match d.eviction {
                Eviction::Lru => ES_EVICTION_LRU,
                Eviction::Frequency => ES_EVICTION_FREQUENCY,
            },
            no_f16: d.device.no_f16.into(),
            downlevel: d.device.downlevel.into(),
            f32_activations: d.device.f32_activations.into(),
            prefetch: d.prefetch.into(),
        }
    }
}

impl Default for EsGenerateOptions {
    fn default() -> Self {
        let d = GenerateOptions::default();
        EsGenerateOptions {
            struct_size: size_of::<EsGenerateOptions>() as u32,
            max_tokens: small(d.max_tokens),
            temperature: d.sampler.temperature,
            top_k: small(d.sampler.top_k),
            top_p: d.sampler.top_p,
            min_p: d.sampler.min_p,
            repeat_penalty: d.sampler.repeat_penalty,
            repeat_last_n: small(d.sampler.repeat_last_n),
            seed: d.sampler.seed,
            stop: std::ptr::null(),
            n_stop: 0,
        }
    }
}

/// `struct_size` must be this library's size of the struct (see the module comment).
fn check_size(name: &str, found: u32, expected: usize) -> Result<(), Failure> {
    if found as usize == expected {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "{name}.struct_size is {found} but this library's {name} has {expected} bytes: \
         initialize it with {}",
        match name {
            "EsLoadOptions" => "es_load_options_default",
            _ => "es_generate_options_default",
        }
    )))
}

impl EsLoadOptions {
    /// The edgeseek options `opts` asks for; the defaults when it is NULL.
    ///
    /// # Safety
    /// `opts` is NULL, or points to a readable `struct_size` (any caller's struct has
    /// one) and, when that is this library's size, to a whole EsLoadOptions whose
    /// `adapter` is NULL or a NUL-terminated string.
    pub unsafe fn read(opts: *const EsLoadOptions) -> Result<LoadOptions, Failure> {
        if opts.is_null() {
            return Ok(LoadOptions::default());
        }
        // SAFETY: the caller promises the first field is readable; no reference to the
        // whole struct is made before its size is checked.
        let found = unsafe { addr_of!((*opts).struct_size).read() };
        check_size("EsLoadOptions", found, size_of::<Self>())?;
        // SAFETY: the struct has this library's size, so all of it is readable.
        unsafe { (*opts).convert() }
    }

    /// # Safety
    /// `adapter` is NULL or a NUL-terminated string.
    unsafe fn convert(&self) -> Result<LoadOptions, Failure> {
        let expert_cache_bytes = match self.expert_cache {
            ES_EXPERT_CACHE_AUTO => ExpertBudget::Auto,
            ES_EXPERT_CACHE_MIN => ExpertBudget::Min,
            ES_EXPERT_CACHE_BYTES => ExpertBudget::Bytes(self.expert_cache_bytes),
            other => {
                return Err(Failure::invalid(format!(
                    "EsLoadOptions.expert_cache is {other} (ES_EXPERT_CACHE_AUTO, _MIN or _BYTES)"
                )))
            }
        };
        let eviction = match self.eviction {
            ES_EVICTION_LRU => Eviction::Lru,
            ES_EVICTION_FREQUENCY => Eviction::Frequency,
            other => {
                return Err(Failure::invalid(format!(
                    "EsLoadOptions.eviction is {other} (ES_EVICTION_LRU or ES_EVICTION_FREQUENCY)"
                )))
            }
        };
        let adapter = if self.adapter.is_null() {
            None
        } else {
            Some(unsafe { str_arg(self.adapter, "EsLoadOptions.adapter") }?.to_string())
        };
        Ok(LoadOptions {
            device: DeviceOptions {
                adapter,
                no_f16: self.no_f16 != 0,
                downlevel: self.downlevel != 0,
                f32_activations: self.f32_activations != 0,
                // A measuring switch of the Rust API, not offered through the C one.
                buffer_weights: false,
            },
            n_ctx: (self.n_ctx != 0).then_some(self.n_ctx),
            // edgeseek checks the range (1..=4096) and names it.
            max_batch: self.max_batch,
            expert_cache_bytes,
            eviction,
            prefetch: self.prefetch != 0,
            max_resident_bytes: (self.max_resident_bytes != 0).then_some(self.max_resident_bytes),
            ..LoadOptions::default()
        })
    }
}

impl EsGenerateOptions {
    /// The edgeseek options `opts` asks for; the defaults when it is NULL. The
    /// sampler's ranges are checked when generation starts, with the same messages as
    /// in Rust.
    ///
    /// # Safety
    /// `opts` is NULL, or points to a readable `struct_size` and, when that is this
    /// library's size, to a whole EsGenerateOptions whose `stop` is NULL or points to
    /// `n_stop` pointers, each NULL or a NUL-terminated string.
    pub unsafe fn read(opts: *const EsGenerateOptions) -> Result<GenerateOptions, Failure> {
        if opts.is_null() {
            return Ok(GenerateOptions::default());
        }
        // SAFETY: as in EsLoadOptions::read.
        let found = unsafe { addr_of!((*opts).struct_size).read() };
        check_size("EsGenerateOptions", found, size_of::<Self>())?;
        // SAFETY: the struct has this library's size, so all of it is readable.
        unsafe { (*opts).convert() }
    }

    /// # Safety
    /// As [`EsGenerateOptions::read`]'s `stop`.
    unsafe fn convert(&self) -> Result<GenerateOptions, Failure> {
        // 0 would run the prompt and add an empty answer to the conversation: more
        // likely a mistake (an unparsed number) than a wish, so it is refused.
        if self.max_tokens == 0 {
            return Err(Failure::invalid(
                "EsGenerateOptions.max_tokens is 0: at least 1 token must be allowed",
            ));
        }
        let mut stop = Vec::with_capacity(self.n_stop.min(64));
        if self.n_stop > 0 {
            if self.stop.is_null() {
                return Err(Failure::invalid(format!(
                    "EsGenerateOptions.stop is NULL but n_stop is {}",
                    self.n_stop
                )));
            }
            for i in 0..self.n_stop {
                // SAFETY: the caller promises n_stop readable pointers.
                let s = unsafe { *self.stop.add(i) };
                let what = format!("EsGenerateOptions.stop[{i}]");
                stop.push(unsafe { str_arg(s, &what) }?.to_string());
            }
        }
        Ok(GenerateOptions {
            max_tokens: self.max_tokens as usize,
            sampler: SamplerOptions {
                temperature: self.temperature,
                top_k: self.top_k as usize,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: self.repeat_last_n as usize,
                seed: self.seed,
            },
            stop,
            ..GenerateOptions::default()
        })
    }
}

/// # Safety
/// `out` is NULL or points to writable storage for an EsLoadOptions.
#[no_mangle]
pub unsafe extern "C" fn es_load_options_default(out: *mut EsLoadOptions) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's promise; write() does not read
        // the (possibly uninitialized) old value.
        unsafe { out.write(EsLoadOptions::default()) };
    }
}

/// # Safety
/// `out` is NULL or points to writable storage for an EsGenerateOptions.
#[no_mangle]
pub unsafe extern "C" fn es_generate_options_default(out: *mut EsGenerateOptions) {
    if !out.is_null() {
        // SAFETY: as in es_load_options_default.
        unsafe { out.write(EsGenerateOptions::default()) };
    }
}
