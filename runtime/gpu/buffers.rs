//! GPU buffers: quantized weight matrices (split by rows at the binding limit),
//! activations, uniforms and readback.

use bytemuck::Pod;

use super::context::{DeviceProfile, GpuContext};
use super::pipelines::q8dot_reader;
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
/// expert cache slot), or in a texture.
pub struct WeightPart {
    /// [n_rows, row_bytes] raw GGUF blocks + padding, in the matrix's `layout` order.
    pub storage: PartStorage,
    /// Byte range of the rows (and padding) in a buffer; in a texture, offset 0 and
    /// the texture's bytes.
    pub offset: u64,
    pub size: u64,
    pub row0: u32,
    pub n_rows: u32,
    /// Streamed part: (file offset, bytes) it is loaded from into a ring slot before
    /// use; `buffer` is then only a placeholder (the op binds the slot).
    pub source: Option<(u64, u64)>,
}

/// Where a part's bytes live.
pub enum PartStorage {
    /// A storage buffer (a whole one, an expert cache slot, or the placeholder of a
    /// streamed part): what every kernel reads.
    Buffer(wgpu::Buffer),
    /// A texture that only the q8dot kernels read ([`WeightTexture`]).
    Texture(WeightTexture),
}

/// A part's bytes (in its layout's order) in an rgba32uint texture, 16 bytes to a texel
/// and `1 << shift` texels to a row, zero past the end. On lavapipe the 8-bit kernels
/// read a texture faster than a storage buffer, so quantized dense matrices are
/// uploaded this way on CPU-backed devices ([`Placement::of`]).
pub struct WeightTexture {
    pub view: wgpu::TextureView,
    pub shift: u32,
}

/// Narrowest texture row (texels): 4 KiB. A part wastes less than one row (4 KiB at
/// this width, more for a part so large that its rows had to be wider).
const MIN_TEXTURE_SHIFT: u32 = 8;

impl WeightTexture {
    /// Row width (log2 texels) and rows for `bytes`: the narrowest row from 4 KiB up
    /// whose row count fits `max_dim`; None if none does.
    pub fn shape(bytes: u64, max_dim: u32) -> Option<(u32, u32)> {
        let texels = bytes.div_ceil(16).max(1);
        (MIN_TEXTURE_SHIFT..=max_dim.checked_ilog2()?)
            .map(|shift| (shift, texels.div_ceil(1 << shift)))
            .find(|&(_, rows)| rows <= u64::from(max_dim))
            .map(|(shift, rows)| (shift, rows as u32))
    }
}

/// What reads a dense matrix, which decides where it may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixUse {
    /// Matrix products ([`super::kernels::MatOp`]): the 8-bit kernels can read it from
    /// a texture and in groups of rows.
    Mat,
    /// Per-head products (MLA's HeadMatVec, HeadMatVecT): storage buffers only.
    Heads,
}

/// Where a matrix's parts go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Buffers,
    /// Textures of at most `max_dim` x `max_dim` texels ([`WeightTexture`]).
    Textures {
        max_dim: u32,
    },
}

impl Placement {
    /// Where a model's load puts a matrix in `format` read by `use_`: in textures where
    /// the profile lets the 8-bit kernels read them so
    /// ([`super::context::DeviceProfile::weight_textures`]), mat ops read it, and its
    /// format has a q8dot reader (every format's was faster so, in the row order
    /// [`RowLayout::of`] gives it: docs/performance.md, "Rows in groups"); in buffers
    /// otherwise.
    pub fn of(profile: &DeviceProfile, format: WeightFormat, use_: MatrixUse) -> Placement {
        let reader = q8dot_reader(format).is_some();
        if profile.weight_textures && use_ == MatrixUse::Mat && reader {
            Placement::Textures {
                max_dim: profile.max_texture_dim,
            }
        } else {
            Placement::Buffers
        }
    }

    /// The largest part (rows and read padding) within `limit` bytes that it holds.
    pub fn part_limit(self, limit: u64) -> u64 {
        match self {
            Placement::Buffers => limit,
            Placement::Textures { max_dim } => limit.min(16 * u64::from(max_dim).pow(2)),
        }
    }

    /// GPU bytes of a part of `bytes` (rows and read padding), as uploaded; None if a
    /// texture cannot hold it.
    pub fn part_bytes(self, bytes: u64) -> Option<u64> {
        match self {
            Placement::Buffers => Some(bytes.next_multiple_of(4).max(4)),
            Placement::Textures { max_dim } => WeightTexture::shape(bytes, max_dim)
                .map(|(shift, rows)| (16u64 << shift) * u64::from(rows)),
        }
    }
}

/// The most rows in a group of the grouped layout ([`RowLayout::Groups`]): a
/// workgroup of the 8-bit kernels (shaders/matvec_q8.wgsl, matmul_q8.wgsl) covers 64
/// rows, whole groups of any size up to this.
pub const MAX_ROW_GROUP: u32 = 64;

/// The order of a matrix's blocks in GPU memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLayout {
    /// The file's: row after row.
    Rows,
    /// Groups of `n` rows (a power of two, 2 to [`MAX_ROW_GROUP`]) whose blocks are
    /// interleaved: block k of the group's row i lies `n * k + i` blocks from the
    /// group's start, and the last group is padded with zero rows. The 8-bit kernels
    /// walk a workgroup's 64 rows a block at a time, and in the file's order each SIMD
    /// group read 32 rows' runs at once and stalled on them (lavapipe loads lane by
    /// lane); in groups they read far fewer runs (docs/performance.md, "Rows in
    /// groups"). Only the q8dot kernels read it (their readers find blocks through
    /// `row_start` and `blk`, q8dot/common.wgsl).
    Groups(u32),
}

impl RowLayout {
    /// How a model's load lays out a matrix in `format` read by `use_`: in groups of the
    /// size its reader reads fastest ([`super::pipelines::Q8Reader::row_group`]) where
    /// the profile says the 8-bit kernels read them
    /// ([`super::context::DeviceProfile::row_groups`]) and mat ops read it; in the
    /// file's order otherwise.
    pub fn of(profile: &DeviceProfile, format: WeightFormat, use_: MatrixUse) -> RowLayout {
        let group = q8dot_reader(format).map_or(1, |r| r.row_group);
        if profile.row_groups && use_ == MatrixUse::Mat && group > 1 {
            RowLayout::Groups(group)
        } else {
            RowLayout::Rows
        }
    }

    /// Rows per group: 1 in the file's order.
    pub fn group_rows(self) -> u32 {
        match self {
            RowLayout::Rows => 1,
            RowLayout::Groups(n) => n,
        }
    }

    /// This layout where a part of at most `limit` bytes holds a whole group of rows of
    /// `row_bytes` (with the read padding), the file's order otherwise (and for a group
    /// size the kernels cannot take: not a power of two from 2 to [`MAX_ROW_GROUP`]).
    fn fitting(self, limit: u64, row_bytes: u64) -> RowLayout {
        let n = self.group_rows();
        let group = u64::from(n) * row_bytes + WEIGHT_PAD;
        let valid = n.is_power_of_two() && (2..=MAX_ROW_GROUP).contains(&n);
        match self {
            RowLayout::Groups(_) if valid && group <= limit.min(MAX_PART_BYTES) => self,
            _ => RowLayout::Rows,
        }
    }

    /// Row runs of parts of at most `limit` bytes ([`split_rows`]); in groups, whole
    /// groups per part (the last part's last group padded). Call on a layout that
    /// [`RowLayout::fitting`] gave for `limit`.
    fn split(self, limit: u64, row_bytes: u64, n_rows: u32) -> Vec<(u32, u32)> {
        match self {
            RowLayout::Rows => split_rows(limit, row_bytes, n_rows),
            RowLayout::Groups(n) => {
                let group = u64::from(n) * row_bytes;
                let groups = limit.min(MAX_PART_BYTES).saturating_sub(WEIGHT_PAD) / group;
                split_rows(groups * group + WEIGHT_PAD, row_bytes, n_rows)
            }
        }
    }

    /// Bytes that `n_rows` rows take in this layout (without the read padding).
    fn stored_bytes(self, n_rows: u32, row_bytes: u64) -> u64 {
        u64::from(n_rows.next_multiple_of(self.group_rows())) * row_bytes
    }
}

/// A part's bytes as the GPU holds them: `rows` (the file's, row after row, of
/// `row_bytes` each in blocks of `block_bytes`) in `layout`'s order.
pub struct PartBytes<'a> {
    rows: &'a [u8],
    row_bytes: usize,
    block_bytes: usize,
    layout: RowLayout,
}

impl PartBytes<'_> {
    /// Bytes in the file's order, for any bytes (one "row").
    fn in_order(bytes: &[u8]) -> PartBytes<'_> {
        PartBytes {
            rows: bytes,
            row_bytes: bytes.len(),
            block_bytes: bytes.len(),
            layout: RowLayout::Rows,
        }
    }

    /// Bytes in the layout, padding rows included.
    fn len(&self) -> usize {
        match self.layout {
            RowLayout::Rows => self.rows.len(),
            RowLayout::Groups(_) => {
                let n_rows = (self.rows.len() / self.row_bytes) as u32;
                self.layout.stored_bytes(n_rows, self.row_bytes as u64) as usize
            }
        }
    }

    /// Writes the laid-out bytes from `start` on into `view` (its whole length), zeros
    /// past [`PartBytes::len`].
    fn write(&self, start: usize, view: &mut wgpu::BufferViewMut) {
        let stop = (start + view.len()).min(self.len()).max(start);
        if self.layout == RowLayout::Rows {
            if stop > start {
                view.slice(..stop - start)
                    .copy_from_slice(&self.rows[start..stop]);
            }
            view.slice(stop - start..).fill(0);
            return;
        }
        let (rb, bb) = (self.row_bytes, self.block_bytes);
        let g = self.layout.group_rows() as usize;
        let group_bytes = g * rb;
        let mut p = start;
        while p < stop {
            // Block k of row i of group gi, byte j of it.
            let (gi, q) = (p / group_bytes, p % group_bytes);
            let (slot, j) = (q / bb, q % bb);
            let (k, i) = (slot / g, slot % g);
            let n = (bb - j).min(stop - p);
            let dst = p - start..p - start + n;
            let src = (gi * g + i) * rb + k * bb + j;
            if src < self.rows.len() {
                view.slice(dst).copy_from_slice(&self.rows[src..src + n]);
            } else {
                view.slice(dst).fill(0); // a padding row of the last group
            }
            p += n;
        }
        view.slice(stop - start..).fill(0);
    }
}

impl WeightPart {
    /// The part's buffer range as a storage binding, or an error naming `what` for a
    /// texture part (kernels other than the q8dot ones read buffers only).
    pub fn buffer_binding(&self, what: &str) -> Result<wgpu::BufferBinding<'_>> {
        match &self.storage {
            PartStorage::Buffer(buffer) => Ok(wgpu::BufferBinding {
                buffer,
                offset: self.offset,
                size: wgpu::BufferSize::new(self.size),
            }),
            PartStorage::Texture(_) => Err(Error::Internal(format!(
                "{what}: a kernel that reads buffers got a texture part"
            ))),
        }
    }
}

/// A 2-D weight tensor on the GPU, still in its GGUF format.
pub struct WeightMatrix {
    pub format: WeightFormat,
    pub n_rows: u32,
    pub n_cols: u32,
    pub row_bytes: u32,
    pub layout: RowLayout,
    pub parts: Vec<WeightPart>,
}

impl WeightMatrix {
    /// Uploads `data` (`n_rows` rows of `n_cols` weights in `format`, read from the
    /// mmap) in parts of at most `binding_limit` bytes each, through `up`'s staging,
    /// into storage buffers (the kernel tests; a model's load places each matrix).
    #[cfg(test)]
    pub fn upload(
        ctx: &GpuContext,
        up: &mut Uploader,
        name: &str,
        format: WeightFormat,
        dims: [u32; 2],
        data: &[u8],
    ) -> Result<WeightMatrix> {
        let (placement, layout) = (Placement::Buffers, RowLayout::Rows);
        Self::upload_placed(ctx, up, name, format, dims, data, placement, layout)
    }

    /// As [`WeightMatrix::upload`], into textures if `placement` says so, in parts a
    /// texture holds, and in `layout`'s order (groups where a part holds a group: see
    /// [`RowLayout::fitting`]). Only the q8dot kernels read textures and groups: the
    /// format must have a reader for either.
    #[allow(clippy::too_many_arguments)]
    pub fn upload_placed(
        ctx: &GpuContext,
        up: &mut Uploader,
        name: &str,
        format: WeightFormat,
        [n_rows, n_cols]: [u32; 2],
        data: &[u8],
        placement: Placement,
        layout: RowLayout,
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
        let limit = placement.part_limit(up.part_limit(ctx));
        if limit.saturating_sub(WEIGHT_PAD) < row_bytes {
            return Err(Error::Limit {
                what: format!("one row of tensor '{name}' in a single GPU binding"),
                needed: row_bytes + WEIGHT_PAD,
                limit,
                unit: "bytes",
            });
        }
        let layout = layout.fitting(limit, row_bytes);
        let mut parts = Vec::new();
        for (row0, rows) in layout.split(limit, row_bytes, n_rows) {
            let start = u64::from(row0) * row_bytes;
            let bytes = PartBytes {
                rows: &data[start as usize..(start + u64::from(rows) * row_bytes) as usize],
                row_bytes: row_bytes as usize,
                block_bytes: format.block_bytes() as usize,
                layout,
            };
            let (storage, size) = match placement {
                Placement::Textures { max_dim } => up.texture(ctx, name, &bytes, max_dim)?,
                Placement::Buffers => {
                    let buffer = storage(ctx, name, bytes.len() as u64 + WEIGHT_PAD);
                    up.write_part(ctx, &buffer, 0, &bytes)?;
                    let size = buffer.size();
                    (PartStorage::Buffer(buffer), size)
                }
            };
            parts.push(WeightPart {
                storage,
                size,
                offset: 0,
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
            layout,
            parts,
        })
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// What [`WeightMatrix::gpu_bytes`] will be for `n_rows` x `n_cols` in `format`
    /// uploaded in parts of at most `limit` bytes as `placement` and `layout` say (the
    /// memory plan's figure); None if it cannot be uploaded so.
    pub fn gpu_bytes_of(
        format: WeightFormat,
        [n_rows, n_cols]: [u32; 2],
        limit: u64,
        placement: Placement,
        layout: RowLayout,
    ) -> Option<u64> {
        let row_bytes = format.row_bytes(u64::from(n_cols))?;
        let limit = placement.part_limit(limit);
        let layout = layout.fitting(limit, row_bytes);
        layout
            .split(limit, row_bytes, n_rows)
            .iter()
            .map(|&(_, n)| placement.part_bytes(layout.stored_bytes(n, row_bytes) + WEIGHT_PAD))
            .sum()
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
            layout: RowLayout::Rows,
            parts: vec![WeightPart {
                storage: PartStorage::Buffer(buffer.clone()),
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

    /// Writes `bytes` at byte `dst_offset` (a multiple of 4) of `dst` (which must hold
    /// them, rounded up to 4 bytes) and waits until the copy is done.
    pub fn write_at(
        &mut self,
        ctx: &GpuContext,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: &[u8],
    ) -> Result<()> {
        self.write_part(ctx, dst, dst_offset, &PartBytes::in_order(bytes))
    }

    /// As [`Uploader::write_at`], the bytes of a part as its layout orders them.
    fn write_part(
        &mut self,
        ctx: &GpuContext,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        src: &PartBytes,
    ) -> Result<()> {
        let len = src.len() as u64;
        let mut start = 0;
        while start < len {
            let n = (len - start).min(STAGING_BYTES).next_multiple_of(4);
            self.stage(ctx, src, start as usize, n)?;
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&self.staging, 0, dst, dst_offset + start, n);
            ctx.queue.submit([enc.finish()]);
            start += STAGING_BYTES;
        }
        wait(ctx, "uploading weights")
    }
}

impl Uploader {
    /// A texture holding `bytes` and at least [`WEIGHT_PAD`] zero bytes after them
    /// ([`WeightTexture`]), filled through the staging buffer a band of whole rows at a
    /// time; with its size in bytes.
    /// The largest part this uploader makes: its binding limit, within what a shader
    /// offset and a buffer can hold.
    fn part_limit(&self, ctx: &GpuContext) -> u64 {
        self.binding_limit
            .min(MAX_PART_BYTES)
            .min(ctx.profile.max_buffer_size)
    }

    fn texture(
        &mut self,
        ctx: &GpuContext,
        name: &str,
        bytes: &PartBytes,
        max_dim: u32,
    ) -> Result<(PartStorage, u64)> {
        let padded = bytes.len() as u64 + WEIGHT_PAD;
        let (shift, height) =
            WeightTexture::shape(padded, max_dim).ok_or_else(|| Error::Limit {
                what: format!("tensor '{name}' in one texture of rows of at most {max_dim} texels"),
                needed: padded,
                limit: 16 * u64::from(max_dim) * u64::from(max_dim),
                unit: "bytes",
            })?;
        let width = 1u32 << shift;
        let row_bytes = 16 * u64::from(width);
        let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(name),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        // Bands of whole rows, the last one zero-filled past the bytes (the padding).
        let band_rows = (STAGING_BYTES / row_bytes).max(1) as u32;
        let mut row0 = 0u32;
        while row0 < height {
            let rows = band_rows.min(height - row0);
            let start = (u64::from(row0) * row_bytes) as usize;
            let len = u64::from(rows) * row_bytes;
            self.stage(ctx, bytes, start, len)?;
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &self.staging,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: Some(rows),
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: row0,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width,
                    height: rows,
                    depth_or_array_layers: 1,
                },
            );
            ctx.queue.submit([enc.finish()]);
            row0 += rows;
        }
        wait(ctx, "uploading weights")?;
        let view = texture.create_view(&Default::default());
        let size = row_bytes * u64::from(height);
        Ok((PartStorage::Texture(WeightTexture { view, shift }), size))
    }

    /// Maps the first `len` bytes of the staging buffer (once the GPU is done with
    /// it), writes `src`'s bytes from `start` on (zeros past its end), and unmaps.
    fn stage(&mut self, ctx: &GpuContext, src: &PartBytes, start: usize, len: u64) -> Result<()> {
        let slice = self.staging.slice(..len);
        let what = "uploading weights";
        map_and_wait(ctx, &slice, wgpu::MapMode::Write, what, what)?;
        {
            let mut view = slice
                .get_mapped_range_mut()
                .map_err(|e| Error::Gpu(format!("uploading weights: {e}")))?;
            src.write(start, &mut view);
        }
        self.staging.unmap();
        Ok(())
    }
}

/// Maps `slice` for `mode` and waits for the device (`waiting` names that wait in an
/// error); a failed mapping is an error naming `what`.
fn map_and_wait(
    ctx: &GpuContext,
    slice: &wgpu::BufferSlice<'_>,
    mode: wgpu::MapMode,
    waiting: &str,
    what: &str,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(mode, move |r| {
        let _ = tx.send(r);
    });
    wait(ctx, waiting)?;
    match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Gpu(format!("{what}: {e}"))),
        Err(_) => Err(Error::Gpu(format!("{what}: no answer"))),
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
        let what = "reading results back";
        map_and_wait(
            ctx,
            &slice,
            wgpu::MapMode::Read,
            "waiting for the GPU",
            what,
        )?;
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

#[cfg(test)]
mod tests {
    use super::WeightTexture;

    #[test]
    fn weight_textures_take_the_narrowest_row_that_fits() {
        // Rows of 4 KiB (256 texels) from the smallest part up.
        assert_eq!(WeightTexture::shape(1, 8192), Some((8, 1)));
        assert_eq!(WeightTexture::shape(4096, 8192), Some((8, 1)));
        assert_eq!(WeightTexture::shape(4097, 8192), Some((8, 2)));
        // 32 MiB is 8192 rows of 4 KiB; one byte more needs 8 KiB rows.
        assert_eq!(WeightTexture::shape(32 << 20, 8192), Some((8, 8192)));
        assert_eq!(WeightTexture::shape((32 << 20) + 1, 8192), Some((9, 4097)));
        // A 128 MiB part (the usual binding limit) in 16 KiB rows.
        assert_eq!(WeightTexture::shape(128 << 20, 8192), Some((10, 8192)));
        // The largest a square of max_dim texels holds, and past it none.
        assert_eq!(WeightTexture::shape(16 << 26, 8192), Some((13, 8192)));
        assert_eq!(WeightTexture::shape((16 << 26) + 16, 8192), None);
        assert_eq!(WeightTexture::shape(16, 0), None);
    }
}
