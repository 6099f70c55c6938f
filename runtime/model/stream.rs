//! One memory budget for everything (`LoadOptions::max_resident_bytes`): the plan that
//! divides it between the KV cache, scratch, resident dense weights, the expert cache
//! and a ring of buffers that dense weights which do not fit stream through, and the
//! streamer that fills that ring from the file mapping while the GPU works.
//!
//! Streamed matrices are cut into parts of at most one ring slot. Each part is a
//! "unit"; units are numbered in the order the graph uses them and go through a ring
//! of two GPU slots: while the GPU runs unit k, the CPU copies unit k+1 into the other
//! slot (its writes are ordered after the work already submitted, which is what used
//! that slot last). At most two units' bytes sit in wgpu's upload staging at a time.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::gguf::{GgufFile, TensorInfo};
use crate::gpu::buffers::{self, WeightMatrix, WeightPart};
use crate::gpu::context::GpuContext;
use crate::gpu::graph::{flush, Buffer};
use crate::model::config::Config;

/// Largest ring slot: a layer's biggest matrix of a 1.5B model at Q4_K is 7.7 MiB.
const MAX_SLOT: u64 = 16 << 20;

/// How the budget is spent, decided at load and reported through the API.
#[derive(Clone, Debug, Default)]
pub struct MemoryPlan {
    /// The budget asked for (None: everything resident, experts by their own budget).
    pub budget: Option<u64>,
    pub kv_cache: u64,
    pub scratch: u64,
    /// Norms, biases, rope tables, routers and MLA's per-head matrices: always resident.
    pub always_resident: u64,
    /// Dense matrices resident on the GPU.
    pub dense_resident: u64,
    /// Dense matrices streamed from the file, every token.
    pub dense_streamed: u64,
    /// The two ring slots plus the upload staging they need (0 without streaming).
    pub stream_buffers: u64,
    /// Bytes of one ring slot (the largest streamed part).
    pub slot_bytes: u64,
    /// Layers whose matrices stream (the rest are resident).
    pub streamed_layers: Vec<u32>,
    pub output_streamed: bool,
    /// Bytes the plan leaves to the expert cache (MoE models; None: its own default).
    pub expert_cache: Option<u64>,
}

impl MemoryPlan {
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let mut s = format!(
            "memory plan: dense weights {:.1} MiB resident, {:.1} MiB streamed per token ({} layers{}), KV {:.1} MiB, scratch {:.1} MiB, small tensors {:.1} MiB",
            mib(self.dense_resident),
            mib(self.dense_streamed),
            self.streamed_layers.len(),
            if self.output_streamed { " and the output matrix" } else { "" },
            mib(self.kv_cache),
            mib(self.scratch),
            mib(self.always_resident),
        );
        if self.stream_buffers > 0 {
            s.push_str(&format!(
                ", stream ring + staging {:.1} MiB (slots of {:.2} MiB)",
                mib(self.stream_buffers),
                mib(self.slot_bytes)
            ));
        }
        if let Some(e) = self.expert_cache {
            s.push_str(&format!(", expert cache {:.1} MiB", mib(e)));
        }
        if let Some(b) = self.budget {
            s.push_str(&format!(" (budget {:.1} MiB)", mib(b)));
        }
        s
    }
}

fn rows_cols(t: &TensorInfo) -> (u64, u64) {
    (t.dims[1..].iter().product(), t.dims[0])
}

/// Matrices that never stream: tiny ones the CPU needs every step or that kernels need
/// whole (routers, MLA's per-head k_b / v_b / kv_b).
pub fn always_resident(name: &str) -> bool {
    [
        "ffn_gate_inp.weight",
        "attn_k_b.weight",
        "attn_v_b.weight",
        "attn_kv_b.weight",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// Dense matrices: neither routed experts nor the embedding table (gathered on the CPU).
fn is_dense_matrix(t: &TensorInfo) -> bool {
    t.dims.len() >= 2
        && !t.name.ends_with("_exps.weight")
        && t.name != crate::model::names::TOKEN_EMBD
}

/// GPU bytes of a matrix uploaded in parts at the binding limit (rows, read padding).
pub fn matrix_bytes(t: &TensorInfo, limit: u64) -> u64 {
    let (rows, cols) = rows_cols(t);
    let Some(row_bytes) = t.format.row_bytes(cols) else {
        return t.size;
    };
    buffers::split_rows(limit, row_bytes, rows as u32)
        .iter()
        .map(|&(_, n)| (u64::from(n) * row_bytes + buffers::WEIGHT_PAD).next_multiple_of(4))
        .sum()
}

/// What the plan needs to know besides the budget.
pub struct PlanInput {
    pub budget: Option<u64>,
    pub kv_cache: u64,
    pub scratch: u64,
    /// Streamable dense bytes per layer, and the output matrix (token_embd when tied).
    pub layers: Vec<u64>,
    pub output: u64,
    /// 1-D tensors (as f32) and always-resident matrices.
    pub always_resident: u64,
    /// The largest streamable part (at the binding limit) and the largest row.
    pub largest_part: u64,
    pub largest_row: u64,
    /// The smallest expert cache (MoE), and all experts.
    pub expert_min: u64,
    pub expert_all: u64,
    pub n_ctx: u32,
}

impl PlanInput {
    /// Streamable bytes per layer, the output matrix, and the part/row sizes, from the
    /// file's tensor table.
    pub fn dense_shapes(
        file: &GgufFile,
        cfg: &Config,
        output: &str,
        limit: u64,
    ) -> (Vec<u64>, u64, u64, u64, u64) {
        let mut layers = vec![0u64; cfg.n_layer as usize];
        let (mut out, mut always, mut largest_part, mut largest_row) = (0, 0, 0, 0);
        for t in file.tensors() {
            if t.dims.len() == 1 {
                always += t.dims[0] * 4;
                continue;
            }
            let is_output = t.name == output;
            if !(is_dense_matrix(t) || is_output) {
                continue;
            }
            let bytes = matrix_bytes(t, limit);
            if always_resident(&t.name) {
                always += bytes;
                continue;
            }
            let (rows, cols) = rows_cols(t);
            if let Some(rb) = t.format.row_bytes(cols) {
                largest_row = largest_row.max(rb + buffers::WEIGHT_PAD);
                let part = buffers::split_rows(limit, rb, rows as u32)
                    .iter()
                    .map(|&(_, n)| u64::from(n) * rb + buffers::WEIGHT_PAD)
                    .max()
                    .unwrap_or(0);
                largest_part = largest_part.max(part);
            }
            if is_output {
                out = bytes;
            } else if let Some(l) = layer_of(&t.name).filter(|&l| l < layers.len()) {
                layers[l] += bytes;
            }
        }
        (layers, out, always, largest_part, largest_row)
    }
}

fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// Divides the budget: KV, scratch and the small always-resident tensors first, then
/// the expert cache's minimum, then the stream ring (when not everything fits), then
/// dense layers in order and the output matrix as long as they fit; what is left goes
/// to the expert cache.
pub fn plan(path: &std::path::Path, p: &PlanInput) -> Result<MemoryPlan> {
    let dense: u64 = p.layers.iter().sum::<u64>() + p.output;
    let mut plan = MemoryPlan {
        budget: p.budget,
        kv_cache: p.kv_cache,
        scratch: p.scratch,
        always_resident: p.always_resident,
        dense_resident: dense,
        ..Default::default()
    };
    let Some(budget) = p.budget else {
        return Ok(plan);
    };
    let fixed = p.kv_cache + p.scratch + p.always_resident + p.expert_min;
    let all_experts = p.expert_all.max(p.expert_min);
    if budget >= fixed + dense {
        plan.expert_cache = Some((budget - fixed - dense + p.expert_min).min(all_experts));
        return Ok(plan);
    }
    // Streaming: two ring slots and as much staging. Slots of a sixteenth of what is
    // left (so most of it can hold resident layers), at most MAX_SLOT (more, smaller
    // units cost a pause each but leave more to resident layers), at least one row.
    let avail = budget.saturating_sub(fixed);
    let slot = (avail / 16)
        .min(p.largest_part)
        .min(MAX_SLOT)
        .max(p.largest_row)
        .next_multiple_of(256);
    let stream_buffers = 4 * slot;
    if budget < fixed + stream_buffers {
        return Err(Error::Limit {
            what: format!(
                "{}: the memory budget for a context of {} tokens (KV {:.1} MiB, scratch {:.1} MiB, small tensors {:.1} MiB, expert cache minimum {:.1} MiB, stream ring {:.1} MiB)",
                path.display(),
                p.n_ctx,
                p.kv_cache as f64 / 1048576.0,
                p.scratch as f64 / 1048576.0,
                p.always_resident as f64 / 1048576.0,
                p.expert_min as f64 / 1048576.0,
                stream_buffers as f64 / 1048576.0
            ),
            needed: fixed + stream_buffers,
            limit: budget,
        });
    }
    let mut room = budget - fixed - stream_buffers;
    plan.stream_buffers = stream_buffers;
    plan.slot_bytes = slot;
    plan.dense_resident = 0;
    for (l, &b) in p.layers.iter().enumerate() {
        if b <= room {
            room -= b;
            plan.dense_resident += b;
        } else {
            plan.streamed_layers.push(l as u32);
            plan.dense_streamed += b;
        }
    }
    if p.output <= room {
        room -= p.output;
        plan.dense_resident += p.output;
    } else {
        plan.output_streamed = true;
        plan.dense_streamed += p.output;
    }
    plan.expert_cache = Some((p.expert_min + room).min(all_experts));
    Ok(plan)
}

/// A streamed matrix: parts of at most `slot` bytes (and the binding limit) that are
/// loaded from the file into a ring slot right before use. `placeholder` stands in for
/// the buffer until the graph binds each part to its slot.
pub fn streamed_matrix(
    t: &TensorInfo,
    [n_rows, n_cols]: [u32; 2],
    slot: u64,
    limit: u64,
    placeholder: &Buffer,
) -> Result<WeightMatrix> {
    let row_bytes = t.format.row_bytes(u64::from(n_cols)).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: {n_cols} columns do not fit {}",
            t.name,
            t.format.name()
        ))
    })?;
    let parts = buffers::split_rows(slot.min(limit), row_bytes, n_rows)
        .into_iter()
        .map(|(row0, rows)| {
            let len = u64::from(rows) * row_bytes;
            WeightPart {
                buffer: placeholder.clone(),
                offset: 0,
                size: (len + buffers::WEIGHT_PAD).next_multiple_of(4),
                row0,
                n_rows: rows,
                source: Some((t.offset + u64::from(row0) * row_bytes, len)),
            }
        })
        .collect();
    Ok(WeightMatrix {
        format: t.format,
        n_rows,
        n_cols,
        row_bytes: row_bytes as u32,
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
    submitted: Vec<Option<wgpu::SubmissionIndex>>,
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

    /// The units a graph uses, in order; every graph must use the same ones.
    pub fn set_units(&mut self, units: Vec<(u64, u64)>) -> Result<()> {
        if !self.units.is_empty() && self.units != units {
            return Err(Error::Gpu(
                "internal: prefill and decode graphs stream different units".into(),
            ));
        }
        self.submitted = vec![None; units.len()];
        self.units = units;
        Ok(())
    }

    /// The pause before unit `u` is needed (placed right after the previous unit's
    /// work): submits the work recorded so far, waits until the submission that
    /// consumed unit u - 2's upload is done (bounding staging to two units), copies
    /// unit `u` from the mapping into its slot.
    pub fn load(
        &mut self,
        ctx: &GpuContext,
        u: usize,
        enc: &mut wgpu::CommandEncoder,
    ) -> Result<()> {
        let index = flush(ctx, enc);
        if u > 0 {
            if let Some(prev) = self.submitted[u - 1].take() {
                ctx.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(prev),
                        timeout: None,
                    })
                    .map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?;
            }
        }
        self.submitted[u] = Some(index);
        let (offset, len) = self.units[u];
        let bytes = self.file.range(offset, len);
        // The staging of slot u % 2 was last copied from for unit u - 2, before the
        // submission just waited for: it maps without waiting for the GPU.
        let staging = &self.staging[u % 2];
        let len4 = len.next_multiple_of(4);
        let slice = staging.slice(..len4);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Write, move |r| {
            let _ = tx.send(r);
        });
        let mapped = loop {
            ctx.device
                .poll(wgpu::PollType::Poll)
                .map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?;
            match rx.try_recv() {
                Ok(r) => break r,
                Err(std::sync::mpsc::TryRecvError::Empty) => std::thread::yield_now(),
                Err(_) => return Err(Error::Gpu("streaming weights: no answer".into())),
            }
        };
        mapped.map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?;
        {
            let mut view = slice
                .get_mapped_range_mut()
                .map_err(|e| Error::Gpu(format!("streaming weights: {e}")))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        staging.unmap();
        // First in the fresh encoder: after `index` (whose work is the last to read
        // this slot's previous unit, u - 2), before the work that reads unit u.
        enc.copy_buffer_to_buffer(staging, 0, &self.ring[u % 2], 0, len4);
        self.file.release(offset, len);
        self.bytes_streamed += len;
        Ok(())
    }
}
