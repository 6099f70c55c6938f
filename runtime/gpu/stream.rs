//! The GPU side of streaming dense weights that do not fit the memory budget (the plan
//! is [`crate::model::plan`]): a ring of two GPU slots that streamed matrix parts
//! ("units", numbered in the order the graph uses them) are copied into from the file
//! mapping, one unit ahead of the kernels. While the GPU runs unit k, the CPU copies
//! unit k+1 into the other slot; its writes are ordered after the work already
//! submitted, which is what used that slot last. At most two units' bytes sit in upload
//! staging at a time.

use std::sync::Arc;

use super::buffers::{self, WeightMatrix, WeightPart};
use super::context::GpuContext;
use super::graph::{Encoder, Submission};
use super::Buffer;
use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;
use crate::file::quant::WeightFormat;

/// A streamed matrix of `[n_rows, n_cols]` weights in `format` whose rows start at
/// `file_offset`: parts of at most `slot` bytes (and the binding limit) that are loaded
/// from the file into a ring slot right before use. `placeholder` stands in for the
/// buffer until the graph binds each part to its slot.
pub fn streamed_matrix(
    name: &str,
    format: WeightFormat,
    [n_rows, n_cols]: [u32; 2],
    file_offset: u64,
    slot: u64,
    limit: u64,
    placeholder: &Buffer,
) -> Result<WeightMatrix> {
    let row_bytes = format.row_bytes(u64::from(n_cols)).ok_or_else(|| {
        Error::Invalid(format!(
            "{name}: {n_cols} columns do not fit {}",
            format.name()
        ))
    })?;
    let runs = buffers::split_rows(slot.min(limit), row_bytes, n_rows);
    if runs.is_empty() && n_rows > 0 {
        // The plan sizes the ring's slots for the largest row it streams.
        return Err(Error::Internal(format!(
            "{name}: a row of {row_bytes} bytes does not fit a stream slot of {slot} bytes"
        )));
    }
    let parts = runs
        .into_iter()
        .map(|(row0, rows)| {
            let len = u64::from(rows) * row_bytes;
            WeightPart {
                storage: buffers::PartStorage::Buffer(placeholder.clone()),
                offset: 0,
                size: (len + buffers::WEIGHT_PAD).next_multiple_of(4),
                row0,
                n_rows: rows,
                source: Some((file_offset + u64::from(row0) * row_bytes, len)),
            }
        })
        .collect();
    Ok(WeightMatrix {
        format,
        n_rows,
        n_cols,
        row_bytes: row_bytes as u32,
        layout: buffers::RowLayout::Rows,
        parts,
    })
}

/// Copies units into the ring during a step, one unit ahead of the GPU.
pub struct Streamer {
    file: Arc<GgufFile>,
    ring: [Buffer; 2],
    /// Our own upload staging, one per slot: a fixed size, unlike write_buffer's
    /// per-call staging allocations, which lavapipe kept resident between steps.
    staging: [Buffer; 2],
    /// (file offset, bytes) of each unit, in graph order.
    units: Vec<(u64, u64)>,
    /// Submission made at each unit's pause in this step.
    submitted: Vec<Option<Submission>>,
    pub bytes_streamed: u64,
}

impl Streamer {
    pub fn new(ctx: &GpuContext, file: Arc<GgufFile>, slot_bytes: u64) -> Streamer {
        let slot = |i: usize| buffers::storage(ctx, &format!("stream ring {i}"), slot_bytes);
        let staging = |i: usize| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("stream staging {i}")),
                size: slot_bytes,
                usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        Streamer {
            file,
            ring: [slot(0), slot(1)],
            staging: [staging(0), staging(1)],
            units: Vec::new(),
            submitted: Vec::new(),
            bytes_streamed: 0,
        }
    }

    pub fn ring(&self) -> &[Buffer; 2] {
        &self.ring
    }

    /// GPU bytes of the ring slots.
    pub fn ring_bytes(&self) -> u64 {
        self.ring.iter().map(|b| b.size()).sum()
    }

    /// The units a graph uses, in order; every graph must use the same ones.
    pub fn set_units(&mut self, units: Vec<(u64, u64)>) -> Result<()> {
        if !self.units.is_empty() && self.units != units {
            return Err(Error::Internal(
                "prefill and decode graphs stream different units".into(),
            ));
        }
        self.submitted = vec![None; units.len()];
        self.units = units;
        Ok(())
    }

    /// The pause before unit `u` is needed (placed right after the previous unit's
    /// work): submits the work recorded so far, copies unit `u` from the file into
    /// staging once the work that last read that staging buffer is done (bounding
    /// staging to two units), and records the copy into its ring slot.
    pub fn load(&mut self, u: usize, enc: &mut Encoder<'_>) -> Result<()> {
        let ctx = enc.ctx;
        let index = enc.flush();
        // Staging u % 2 was last copied from for unit u - 2, in the submission made at
        // unit u - 1's pause (or in an earlier step, all of whose work is done: wait for
        // what was just submitted, which holds no copy of ours).
        let last_use = match u {
            0 => index.clone(),
            _ => self.submitted[u - 1]
                .take()
                .unwrap_or_else(|| index.clone()),
        };
        self.submitted[u] = Some(index);
        let (offset, len) = self.units[u];
        let bytes = self.file.range(offset, len);
        let staging = &self.staging[u % 2];
        let len4 = len.next_multiple_of(4);
        let slice = staging.slice(..len4);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Write, move |r| {
            let _ = tx.send(r);
        });
        // Waiting for that submission also runs the map callback (no spinning).
        ctx.wait_for(&last_use, "streaming weights")?;
        match rx.try_recv() {
            Ok(r) => r.map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?,
            Err(_) => {
                return Err(Error::Internal(format!(
                    "stream staging {} not mapped after its last use completed",
                    u % 2
                )))
            }
        }
        {
            let mut view = slice
                .get_mapped_range_mut()
                .map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        staging.unmap();
        // First in the fresh encoder: after the work that last read this slot's
        // previous unit (u - 2), before the work that reads unit u.
        enc.copy(staging, 0, &self.ring[u % 2], 0, len4);
        self.file.release(offset, len);
        self.bytes_streamed += len;
        Ok(())
    }
}
