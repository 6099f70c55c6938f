//! GPU buffers: quantized weight matrices (split by rows at the binding limit),
//! activations, uniforms and readback.

use bytemuck::Pod;

use super::context::GpuContext;
use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;

/// Weight buffers carry this many bytes past the last row: the WGSL `w_u32` reads the
/// word after an unaligned offset (see shaders/common.wgsl).
const WEIGHT_PAD: u64 = 4;

/// Shader byte offsets are u32: no part may exceed this, whatever the device allows.
const MAX_PART_BYTES: u64 = 1 << 31;

/// A run of whole rows of a weight matrix in one buffer.
pub struct WeightPart {
    pub buffer: wgpu::Buffer, // [n_rows, row_bytes] raw GGUF blocks + padding
    pub row0: u32,
    pub n_rows: u32,
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
    /// Uploads `data` (`n_rows` rows of `n_cols` weights in `format`) in parts of at
    /// most `binding_limit` bytes each, copying straight from `data` (the mmap) into
    /// mapped GPU memory.
    pub fn upload(
        ctx: &GpuContext,
        name: &str,
        format: WeightFormat,
        n_rows: u32,
        n_cols: u32,
        data: &[u8],
        binding_limit: u64,
    ) -> Result<WeightMatrix> {
        let row_bytes = format
            .row_bytes(u64::from(n_cols))
            .ok_or_else(|| Error::Invalid(format!("{name}: {n_cols} columns do not fit {}", format.name())))?;
        if row_bytes * u64::from(n_rows) != data.len() as u64 {
            return Err(Error::Invalid(format!(
                "{name}: {} bytes for {n_rows} x {n_cols} {}",
                data.len(),
                format.name()
            )));
        }
        let limit = binding_limit.min(MAX_PART_BYTES).min(ctx.profile.max_buffer_size);
        let rows_per_part = limit.saturating_sub(WEIGHT_PAD) / row_bytes;
        if rows_per_part == 0 {
            return Err(Error::Limit {
                what: format!("one row of tensor '{name}' in a single GPU binding"),
                needed: row_bytes + WEIGHT_PAD,
                limit,
            });
        }
        let mut parts = Vec::new();
        let mut row0 = 0u64;
        while row0 < u64::from(n_rows) {
            let rows = rows_per_part.min(u64::from(n_rows) - row0);
            let bytes = &data[(row0 * row_bytes) as usize..((row0 + rows) * row_bytes) as usize];
            let buffer = upload_bytes(ctx, name, bytes, WEIGHT_PAD);
            parts.push(WeightPart { buffer, row0: row0 as u32, n_rows: rows as u32 });
            row0 += rows;
        }
        Ok(WeightMatrix { format, n_rows, n_cols, row_bytes: row_bytes as u32, parts })
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.buffer.size()).sum()
    }
}

/// A storage buffer holding `bytes` followed by `pad` zero bytes (size rounded to 4).
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
        let mut view = buffer.get_mapped_range_mut(..).expect("buffer mapped at creation");
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
        let bytes = (out.len() * 4) as u64;
        let slice = self.buffer.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("reading results back: {e}"))),
            Err(_) => return Err(Error::Gpu("reading results back: no answer".into())),
        }
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading results back: {e}")))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        self.buffer.unmap();
        Ok(())
    }
}
