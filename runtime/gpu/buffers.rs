//! GPU buffers: quantized weight matrices (split by rows at the binding limit),
//! activations, uniforms and readback.

use bytemuck::Pod;

use super::context::GpuContext;
use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;

/// Weight buffers carry this many bytes past the last row: the WGSL `w_u32` reads the
/// word after an unaligned offset (shaders/weights.wgsl), and the 8-bit kernels read
/// whole 16-byte vec4s that may end up to 16 bytes past a run (shaders/q8dot/common.wgsl).
pub const WEIGHT_PAD: u64 = 16;

/// Shader byte offsets are u32: no part may exceed this, whatever the device allows.
const MAX_PART_BYTES: u64 = 1 << 31;

/// Row runs (first row, rows) of a matrix split into parts of at most `limit` bytes
/// (rows plus read padding); empty when not even one row fits.
pub fn split_rows(limit: u64, row_bytes: u64, n_rows: u32) -> Vec<(u32, u32)> {
    let limit = limit.min(MAX_PART_BYTES);
    let per_part = limit.saturating_sub(WEIGHT_PAD) / row_bytes.max(1);
    if per_part == 0 {
        return Vec::new();
    }
    let mut runs = Vec::new();
    let mut row0 = 0u64;
    while row0 < u64::from(n_rows) {
        let rows = per_part.min(u64::from(n_rows) - row0);
        runs.push((row0 as u32, rows as u32));
        row0 += rows;
    }
    runs
}

/// A run of whole rows of a weight matrix in one buffer (or in a range of one: an
/// expert cache slot).
pub struct WeightPart {
    pub buffer: wgpu::Buffer, // [n_rows, row_bytes] raw GGUF blocks + padding
    /// Byte range of the rows (and padding) in `buffer`.
    pub offset: u64,
    pub size: u64,
    pub row0: u32,
    pub n_rows: u32,
    /// Streamed part: (file offset, bytes) it is loaded from into a ring slot before
    /// use; `buffer` is then only a placeholder (the op binds the slot).
    pub source: Option<(u64, u64)>,
}

impl WeightPart {
    pub fn binding(&self) -> wgpu::BufferBinding<'_> {
        wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        }
    }
}

/// A 2-D weight tensor on the GPU, still in its GGUF format.
pub struct WeightMatrix {
    pub format: WeightFormat,
    pub n_rows: u32,
    pub n_cols: u32,
    pub row_bytes: u32,
    pub parts: Vec<WeightPart>,
}

impl WeightMatrix {
    /// Uploads `data` (`n_rows` rows of `n_cols` weights in `format`, read from the
    /// mmap) in parts of at most `binding_limit` bytes each, through `up`'s staging.
    pub fn upload(
        ctx: &GpuContext,
        up: &mut Uploader,
        name: &str,
        format: WeightFormat,
        [n_rows, n_cols]: [u32; 2],
        data: &[u8],
    ) -> Result<WeightMatrix> {
        let row_bytes = format.row_bytes(u64::from(n_cols)).ok_or_else(|| {
            Error::Invalid(format!(
                "{name}: {n_cols} columns do not fit {}",
                format.name()
            ))
        })?;
        if row_bytes * u64::from(n_rows) != data.len() as u64 {
            return Err(Error::Invalid(format!(
                "{name}: {} bytes for {n_rows} x {n_cols} {}",
                data.len(),
                format.name()
            )));
        }
        let limit = up
            .binding_limit
            .min(MAX_PART_BYTES)
            .min(ctx.profile.max_buffer_size);
        if limit.saturating_sub(WEIGHT_PAD) < row_bytes {
            return Err(Error::Limit {
                what: format!("one row of tensor '{name}' in a single GPU binding"),
                needed: row_bytes + WEIGHT_PAD,
                limit,
                unit: "bytes",
            });
        }
        let mut parts = Vec::new();
        for (row0, rows) in split_rows(limit, row_bytes, n_rows) {
            let start = u64::from(row0) * row_bytes;
            let bytes = &data[start as usize..(start + u64::from(rows) * row_bytes) as usize];
            let buffer = storage(ctx, name, bytes.len() as u64 + WEIGHT_PAD);
            up.write(ctx, &buffer, bytes)?;
            parts.push(WeightPart {
                size: buffer.size(),
                offset: 0,
                buffer,
                row0,
                n_rows: rows,
                source: None,
            });
        }
        Ok(WeightMatrix {
            format,
            n_rows,
            n_cols,
            row_bytes: row_bytes as u32,
            parts,
        })
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// A matrix whose rows live at `offset` in `buffer` (an expert cache slot), in
    /// one part of `size` bytes (rows plus padding).
    pub fn in_slot(
        format: WeightFormat,
        [n_rows, n_cols]: [u32; 2],
        buffer: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<WeightMatrix> {
        let row_bytes = format.row_bytes(u64::from(n_cols)).ok_or_else(|| {
            Error::Invalid(format!("{n_cols} columns do not fit {}", format.name()))
        })?;
        Ok(WeightMatrix {
            format,
            n_rows,
            n_cols,
            row_bytes: row_bytes as u32,
            parts: vec![WeightPart {
                buffer: buffer.clone(),
                offset,
                size,
                row0: 0,
                n_rows,
                source: None,
            }],
        })
    }

    /// Bytes of one row block of `n_rows` x `n_cols` in `format`, plus the read padding.
    pub fn bytes_with_pad(format: WeightFormat, n_rows: u32, n_cols: u32) -> Option<u64> {
        Some(format.row_bytes(u64::from(n_cols))? * u64::from(n_rows) + WEIGHT_PAD)
    }
}

/// Copies bytes into GPU buffers through one reused staging buffer, so an upload never
/// holds more than the weights plus [`STAGING_BYTES`]. (`mapped_at_creation` on a
/// storage buffer makes wgpu allocate a hidden staging copy of every buffer; on
/// devices whose memory is host memory, like lavapipe, that doubled the resident size.)
pub struct Uploader {
    staging: wgpu::Buffer,
    /// Largest part of a weight matrix, in bytes (at most the device's binding limit).
    binding_limit: u64,
}

pub const STAGING_BYTES: u64 = 8 << 20;

impl Uploader {
    pub fn new(ctx: &GpuContext, binding_limit: u64) -> Self {
        let binding_limit = binding_limit.min(ctx.profile.max_storage_binding);
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("upload staging"),
            size: STAGING_BYTES,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Uploader {
            staging,
            binding_limit,
        }
    }

    /// Writes `bytes` at the start of `dst` (which must be at least `bytes.len()`
    /// rounded up to 4 bytes long) and waits until the copy is done.
    pub fn write(&mut self, ctx: &GpuContext, dst: &wgpu::Buffer, bytes: &[u8]) -> Result<()> {
        self.write_at(ctx, dst, 0, bytes)
    }

    /// As [`Uploader::write`], at byte `dst_offset` (a multiple of 4) of `dst`.
    pub fn write_at(
        &mut self,
        ctx: &GpuContext,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: &[u8],
    ) -> Result<()> {
        for (i, chunk) in bytes.chunks(STAGING_BYTES as usize).enumerate() {
            let len = (chunk.len() as u64).next_multiple_of(4);
            let slice = self.staging.slice(..len);
            let (tx, rx) = std::sync::mpsc::channel();
            slice.map_async(wgpu::MapMode::Write, move |r| {
                let _ = tx.send(r);
            });
            wait(ctx, "uploading weights")?;
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Gpu(format!("uploading weights: {e}"))),
                Err(_) => return Err(Error::Gpu("uploading weights: no answer".into())),
            }
            {
                let mut view = slice
                    .get_mapped_range_mut()
                    .map_err(|e| Error::Gpu(format!("uploading weights: {e}")))?;
                view.slice(..chunk.len()).copy_from_slice(chunk);
            }
            self.staging.unmap();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            let offset = dst_offset + i as u64 * STAGING_BYTES;
            enc.copy_buffer_to_buffer(&self.staging, 0, dst, offset, len);
            ctx.queue.submit([enc.finish()]);
        }
        wait(ctx, "uploading weights")
    }
}

fn wait(ctx: &GpuContext, what: &str) -> Result<()> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map(|_| ())
        .map_err(|e| Error::Gpu(format!("{what}: {e}")))
}

/// A storage buffer holding `bytes` followed by `pad` zero bytes (size rounded to 4).
/// For small buffers: it goes through wgpu's own staging.
pub fn upload_bytes(ctx: &GpuContext, label: &str, bytes: &[u8], pad: u64) -> wgpu::Buffer {
    let size = (bytes.len() as u64 + pad).next_multiple_of(4).max(4);
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: true,
    });
    if !bytes.is_empty() {
        // A fresh buffer mapped at creation cannot fail to give its range.
        let mut view = buffer
            .get_mapped_range_mut(..)
            .expect("buffer mapped at creation");
        view.slice(..bytes.len()).copy_from_slice(bytes);
    }
    buffer.unmap();
    buffer
}

pub fn upload_f32(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    upload_bytes(ctx, label, bytemuck::cast_slice(data), 0)
}

/// A zeroed storage buffer of `bytes` bytes (at least 4) that can be copied from and to.
pub fn storage(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.next_multiple_of(4).max(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

pub fn uniform<T: Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    let bytes = bytemuck::bytes_of(value);
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).next_multiple_of(16),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// A MAP_READ buffer that results are copied into for the CPU to read.
pub struct Readback {
    buffer: wgpu::Buffer,
}

impl Readback {
    pub fn new(ctx: &GpuContext, label: &str, bytes: u64) -> Self {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.next_multiple_of(4).max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Readback { buffer }
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Waits for the submitted work and copies the first `out.len()` floats into `out`.
    pub fn read_f32(&self, ctx: &GpuContext, out: &mut [f32]) -> Result<()> {
        self.read_bytes(ctx, bytemuck::cast_slice_mut(out))
    }

    /// Waits for the submitted work and copies the first `out.len()` bytes into `out`.
    pub fn read_bytes(&self, ctx: &GpuContext, out: &mut [u8]) -> Result<()> {
        let slice = self.buffer.slice(..out.len() as u64);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        wait(ctx, "waiting for the GPU")?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("reading results back: {e}"))),
            Err(_) => return Err(Error::Gpu("reading results back: no answer".into())),
        }
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading results back: {e}")))?;
            out.copy_from_slice(&view);
        }
        self.buffer.unmap();
        Ok(())
    }
}
