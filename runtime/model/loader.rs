//! Reading tensors at load: each is found by name, its shape checked against the
//! config, then uploaded once (or, in layers the memory plan streams, described for the
//! stream ring). Vectors are dequantized to f32 on the CPU: they are tiny. The blocks
//! (gqa, mla, ffn) load their weights through a [`Loader`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::file::gguf::{GgufFile, TensorInfo};
use crate::file::quant;
use crate::gpu::buffers::{self, MatrixUse, Placement, RowLayout, Uploader, WeightMatrix};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{MAX_HEAD_DIM, MAX_LATENT_DIM};
use crate::gpu::stream::streamed_matrix;
use crate::gpu::Buffer;
use crate::model::config::Config;
use crate::model::names;
use crate::model::plan;

/// Called as weights are uploaded with (bytes uploaded, bytes to upload).
pub type Progress<'p> = &'p mut dyn FnMut(u64, u64);

/// Shapes beyond what our kernels hold in workgroup memory, refused before any GPU
/// work with what the file asks for and the limit.
pub(crate) fn check_kernel_limits(cfg: &Config, path: &Path) -> Result<()> {
    if cfg.head_dim > MAX_HEAD_DIM {
        return Err(Error::unsupported(
            path,
            format!(
                "head dimension {} (the attention kernels take at most {MAX_HEAD_DIM})",
                cfg.head_dim
            ),
        ));
    }
    if let Some(m) = &cfg.mla {
        if m.cache_dim() > MAX_LATENT_DIM {
            return Err(Error::unsupported(
                path,
                format!(
                    "MLA cache rows of {} (kv_lora_rank {} + rope {}; the kernels take at most {MAX_LATENT_DIM})",
                    m.cache_dim(),
                    m.kv_lora_rank,
                    m.qk_rope
                ),
            ));
        }
    }
    Ok(())
}

/// Reads tensors from the file, checks their shapes, uploads them.
pub(crate) struct Loader<'a, 'p> {
    pub file: &'a GgufFile,
    progress: Progress<'p>,
    /// File bytes of the tensors to load, and of those loaded so far (for progress).
    total: u64,
    done: u64,
    ctx: &'a GpuContext,
    up: Uploader,
    /// Bytes uploaded so far.
    bytes: u64,
    /// While loading a streamed layer: (ring slot bytes, placeholder buffer).
    stream: Option<(u64, Buffer)>,
    binding_limit: u64,
}

impl<'a, 'p> Loader<'a, 'p> {
    pub fn new(
        file: &'a GgufFile,
        ctx: &'a GpuContext,
        binding_limit: u64,
        progress: Progress<'p>,
    ) -> Self {
        // Everything but routed experts (streamed) and token embeddings (gathered on
        // the CPU) is loaded now; the embeddings too when they are the output matrix.
        let tied = file.tensor(names::OUTPUT).is_none();
        let total = file
            .tensors()
            .iter()
            .filter(|t| !names::is_expert_tensor(&t.name))
            .filter(|t| tied || t.name != names::TOKEN_EMBD)
            .map(|t| t.size)
            .sum();
        Loader {
            file,
            progress,
            total,
            done: 0,
            ctx,
            up: Uploader::new(ctx, binding_limit),
            bytes: 0,
            stream: None,
            binding_limit,
        }
    }

    /// Matrices loaded from now on stream through ring slots of `slot` bytes
    /// (`placeholder` stands in for the slot until the graph binds it); None: resident.
    pub fn stream_into(&mut self, ring: Option<(u64, Buffer)>) {
        self.stream = ring;
    }

    /// The uploader (for more uploads after the dense weights), the progress callback,
    /// the GPU bytes of the dense weights, and the file bytes progress has counted:
    /// all of them now (a file may hold tensors we never read, such as unused rope
    /// tables, so the last report says so).
    pub fn finish(mut self) -> (Uploader, Progress<'p>, u64, u64) {
        if self.done < self.total {
            self.done = self.total;
            (self.progress)(self.done, self.total);
        }
        (self.up, self.progress, self.bytes, self.total)
    }

    /// Progress: `n` more file bytes loaded (uploaded, or set to stream).
    fn advance(&mut self, n: u64) {
        self.done = (self.done + n).min(self.total);
        (self.progress)(self.done, self.total);
    }

    pub fn info(&self, name: &str) -> Result<&'a TensorInfo> {
        self.file
            .tensor(name)
            .ok_or_else(|| Error::bad_file(self.file.path(), format!("missing tensor '{name}'")))
    }

    fn check_dims(&self, name: &str, dims: &[u64], want: &[u64]) -> Result<()> {
        if dims != want {
            return Err(Error::bad_file(
                self.file.path(),
                format!("tensor '{name}' has shape {dims:?}, expected {want:?}"),
            ));
        }
        Ok(())
    }

    /// A [n_rows, n_cols] matrix (GGUF dims [n_cols, n_rows]) that mat ops read.
    pub fn matrix(&mut self, name: &str, n_rows: u32, n_cols: u32) -> Result<WeightMatrix> {
        let dims = [u64::from(n_cols), u64::from(n_rows)];
        self.matrix_dims(name, &dims, n_rows, n_cols, MatrixUse::Mat)
    }

    /// A [n_rows, n_cols] matrix that per-head products read (HeadMatVec and
    /// HeadMatVecT read storage buffers only).
    pub fn head_matrix(&mut self, name: &str, n_rows: u32, n_cols: u32) -> Result<WeightMatrix> {
        let dims = [u64::from(n_cols), u64::from(n_rows)];
        self.matrix_dims(name, &dims, n_rows, n_cols, MatrixUse::Heads)
    }

    /// A 3-D tensor [n, rows, cols] (GGUF dims [cols, rows, n]) as one matrix of
    /// n * rows rows: one block of rows per head, for per-head products.
    pub fn matrix3(&mut self, name: &str, n: u32, rows: u32, cols: u32) -> Result<WeightMatrix> {
        let dims = [u64::from(cols), u64::from(rows), u64::from(n)];
        self.matrix_dims(name, &dims, n * rows, cols, MatrixUse::Heads)
    }

    fn matrix_dims(
        &mut self,
        name: &str,
        want: &[u64],
        n_rows: u32,
        n_cols: u32,
        use_: MatrixUse,
    ) -> Result<WeightMatrix> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, want)?;
        let dims = [n_rows, n_cols];
        if let Some((slot, placeholder)) = &self.stream {
            if !plan::always_resident(name) {
                let limit = self.binding_limit;
                let m = streamed_matrix(name, t.format, dims, t.offset, *slot, limit, placeholder);
                self.advance(t.size);
                return m;
            }
        }
        let data = self.file.tensor_data(t);
        let profile = &self.ctx.profile;
        let (placement, layout) = (
            Placement::of(profile, t.format, use_),
            RowLayout::of(profile, t.format, use_),
        );
        let up = &mut self.up;
        let m = WeightMatrix::upload_placed(
            self.ctx, up, name, t.format, dims, data, placement, layout,
        )?;
        // Uploaded: the mapped pages need not stay in the resident set.
        self.file.release(t.offset, t.size);
        self.bytes += m.gpu_bytes();
        self.advance(t.size);
        Ok(m)
    }

    /// A vector of `n` values, dequantized on the CPU.
    pub fn vector_f32(&mut self, name: &str, n: u32) -> Result<Vec<f32>> {
        let t = self.info(name)?;
        self.check_dims(name, &t.dims, &[u64::from(n)])?;
        let mut v = vec![0f32; n as usize];
        quant::dequantize(t.format, self.file.tensor_data(t), &mut v);
        self.advance(t.size);
        Ok(v)
    }

    /// A vector of `n` values, dequantized to f32 on the CPU and uploaded.
    pub fn vector(&mut self, name: &str, n: u32) -> Result<Buffer> {
        let v = self.vector_f32(name, n)?;
        self.bytes += u64::from(n) * 4;
        Ok(buffers::upload_f32(self.ctx, name, &v))
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }
}

/// Rope frequencies per pair (see [`crate::model::config::Rope::inv_freq`]), with
/// llama3's `rope_freqs` divisors where the file has them.
pub(crate) fn rope_inv_freq(cfg: &Config, ld: &mut Loader<'_, '_>) -> Result<Vec<f32>> {
    let half = cfg.n_rot / 2;
    let factors = if ld.has(names::ROPE_FREQS) {
        ld.vector_f32(names::ROPE_FREQS, half)?
    } else {
        Vec::new()
    };
    Ok(cfg.rope.inv_freq(cfg.n_rot, &factors))
}
