//! GPU memory for routed experts: equal slots, each holding one expert's gate, up and
//! down matrices in their GGUF format at offsets aligned for binding, in a few large
//! buffers ("slabs"). Which expert sits in which slot is [`crate::experts::cache`].

use super::buffers::{self, Uploader, WeightMatrix};
use super::context::GpuContext;
use super::Buffer;
use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;

/// Byte offsets and sizes of the three projections inside a slot.
#[derive(Clone, Copy, Debug)]
pub struct SlotLayout {
    pub offsets: [u64; 3],
    pub sizes: [u64; 3],
    pub slot_bytes: u64,
}

/// Largest slab: a few big buffers rather than one per slot, but none that a device
/// could refuse for its size.
const MAX_SLAB: u64 = 1 << 30;

impl SlotLayout {
    /// Slot geometry for experts whose projections (gate, up, down) have these
    /// `(format, rows, cols)` in some layer: each projection gets the largest size any
    /// layer needs, aligned to the device's storage offset alignment.
    pub fn new(
        ctx: &GpuContext,
        layers: impl IntoIterator<Item = [(WeightFormat, u32, u32); 3]>,
    ) -> Result<SlotLayout> {
        let align = u64::from(ctx.device.limits().min_storage_buffer_offset_alignment).max(4);
        let mut sizes = [0u64; 3];
        for projs in layers {
            for (p, (format, rows, cols)) in projs.into_iter().enumerate() {
                let bytes = WeightMatrix::bytes_with_pad(format, rows, cols).ok_or_else(|| {
                    Error::Internal(format!("{cols} columns do not fit {}", format.name()))
                })?;
                sizes[p] = sizes[p].max(bytes.next_multiple_of(align));
            }
        }
        let limit = ctx.profile.max_storage_binding;
        if let Some(&big) = sizes.iter().find(|&&s| s > limit) {
            return Err(Error::Limit {
                what: "one expert projection in a single GPU binding".into(),
                needed: big,
                limit,
                unit: "bytes",
            });
        }
        Ok(SlotLayout {
            offsets: [0, sizes[0], sizes[0] + sizes[1]],
            sizes,
            slot_bytes: sizes.iter().sum(),
        })
    }
}

/// `n_slots` expert slots in GPU memory.
pub struct ExpertSlabs {
    slabs: Vec<Buffer>,
    slots_per_slab: u32,
    layout: SlotLayout,
}

impl ExpertSlabs {
    pub fn new(ctx: &GpuContext, layout: SlotLayout, n_slots: u32) -> ExpertSlabs {
        let slab_limit = ctx.profile.max_buffer_size.min(MAX_SLAB);
        let slots_per_slab = (slab_limit / layout.slot_bytes).clamp(1, u64::from(n_slots)) as u32;
        let n_slabs = n_slots.div_ceil(slots_per_slab);
        let slabs = (0..n_slabs)
            .map(|i| {
                let slots = slots_per_slab.min(n_slots - i * slots_per_slab);
                buffers::storage(
                    ctx,
                    &format!("expert slab {i}"),
                    u64::from(slots) * layout.slot_bytes,
                )
            })
            .collect();
        ExpertSlabs {
            slabs,
            slots_per_slab,
            layout,
        }
    }

    pub fn layout(&self) -> SlotLayout {
        self.layout
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.slabs.iter().map(|b| b.size()).sum()
    }

    /// The buffer and byte offset of projection `proj` of `slot`.
    pub fn slot_range(&self, slot: u32, proj: usize) -> (&Buffer, u64) {
        let slab = &self.slabs[(slot / self.slots_per_slab) as usize];
        let offset = u64::from(slot % self.slots_per_slab) * self.layout.slot_bytes
            + self.layout.offsets[proj];
        (slab, offset)
    }

    /// Queues `bytes` (one projection of one expert, from the file mapping) into
    /// `slot`, ordered before the next submission.
    pub fn write(&self, ctx: &GpuContext, slot: u32, proj: usize, bytes: &[u8]) {
        let (buffer, offset) = self.slot_range(slot, proj);
        // Rows are whole 4-byte words for every format at the sizes we accept, but
        // write_buffer needs a multiple of 4: copy an unaligned tail separately.
        let body = bytes.len() & !3;
        ctx.write(buffer, offset, &bytes[..body]);
        if body < bytes.len() {
            let mut tail = [0u8; 4];
            tail[..bytes.len() - body].copy_from_slice(&bytes[body..]);
            ctx.write(buffer, offset + body as u64, &tail);
        }
    }

    /// Writes `bytes` into `slot` at load through the uploader's staging, waiting for
    /// the copy (used when all experts fit).
    pub fn upload(
        &self,
        ctx: &GpuContext,
        up: &mut Uploader,
        slot: u32,
        proj: usize,
        bytes: &[u8],
    ) -> Result<()> {
        let (buffer, offset) = self.slot_range(slot, proj);
        up.write_at(ctx, buffer, offset, bytes)
    }
}
