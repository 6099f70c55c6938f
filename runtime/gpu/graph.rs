//! A forward step as a list of commands, recorded into one command buffer and
//! submitted once (decode: one submission per token) — or, for MoE models, once per
//! MoE layer: the router's choice must reach the CPU before the experts can run.

use super::buffers::Readback;
use super::context::GpuContext;
use super::kernels::{Op, StepParams};
use super::Buffer;
use crate::error::Result;

pub enum Cmd {
    Dispatch(Op),
    /// Copy the last token's row (`row_bytes`) of `src` to the start of `dst`.
    CopyLastRow {
        src: Buffer,
        dst: Buffer,
        row_bytes: u64,
    },
    /// Work the CPU must do in the middle of the step: handed to the step's [`PauseHook`].
    Pause(Pause),
}

/// Why a step hands control back to the CPU.
#[derive(Clone, Copy, Debug)]
pub enum Pause {
    /// The routed experts of this layer (the router's choice must come back first).
    Moe(usize),
    /// Load this stream unit (dense weights that do not fit the budget).
    Stream(usize),
}

/// Handles a pause: given the encoder holding the work so far, submits it (see
/// [`Encoder::flush`]), records or uploads what the pause needs; the rest of the step
/// is recorded into the same encoder afterwards.
pub type PauseHook<'h> = dyn FnMut(Pause, &mut Encoder<'_>) -> Result<()> + 'h;

/// A submitted batch of work, to wait for (see [`GpuContext::wait_for`]).
#[derive(Clone, Debug)]
pub struct Submission(pub(super) wgpu::SubmissionIndex);

/// The command encoder of a step in progress, as the code outside `gpu/` sees it at a
/// pause: copies, compute passes of prepared ops, and submitting what is recorded.
pub struct Encoder<'e> {
    pub(super) ctx: &'e GpuContext,
    pub(super) enc: &'e mut wgpu::CommandEncoder,
}

impl<'e> Encoder<'e> {
    /// The device the step runs on.
    pub fn context(&self) -> &'e GpuContext {
        self.ctx
    }

    /// Submits the work recorded so far and continues in a fresh encoder.
    pub fn flush(&mut self) -> Submission {
        flush(self.ctx, self.enc)
    }

    /// Copies `len` bytes from `src` at `src_offset` to `dst` at `dst_offset`, in order
    /// with the work recorded around it.
    pub fn copy(&mut self, src: &Buffer, src_offset: u64, dst: &Buffer, dst_offset: u64, len: u64) {
        self.enc
            .copy_buffer_to_buffer(src, src_offset, dst, dst_offset, len);
    }

    /// A compute pass to record ops into (ended when the returned pass is dropped).
    pub fn pass(&mut self) -> Pass<'_> {
        Pass(self.enc.begin_compute_pass(&Default::default()))
    }
}

/// A compute pass in progress (see [`Encoder::pass`]).
pub struct Pass<'p>(wgpu::ComputePass<'p>);

impl Pass<'_> {
    /// Records `op` for a step of `n_tokens` tokens.
    pub fn record(&mut self, op: &Op, n_tokens: u32) {
        op.record(&mut self.0, n_tokens);
    }
}

/// Submits the work recorded in `enc` and leaves a fresh encoder in its place.
pub(super) fn flush(ctx: &GpuContext, enc: &mut wgpu::CommandEncoder) -> Submission {
    let fresh = ctx.device.create_command_encoder(&Default::default());
    Submission(ctx.queue.submit([std::mem::replace(enc, fresh).finish()]))
}

#[derive(Default)]
pub struct Graph {
    pub cmds: Vec<Cmd>,
}

impl Graph {
    pub fn ops(&mut self, ops: impl IntoIterator<Item = Op>) {
        self.cmds.extend(ops.into_iter().map(Cmd::Dispatch));
    }

    pub fn op(&mut self, op: Op) {
        self.cmds.push(Cmd::Dispatch(op));
    }

    pub fn copy_last_row(&mut self, src: &Buffer, dst: &Buffer, row_bytes: u64) {
        self.cmds.push(Cmd::CopyLastRow {
            src: src.clone(),
            dst: dst.clone(),
            row_bytes,
        });
    }

    pub fn pause(&mut self, p: Pause) {
        self.cmds.push(Cmd::Pause(p));
    }

    /// Inserts the stream pauses for `n_units` units: the first at the start, each
    /// next one right after the last op that reads the previous unit.
    pub fn place_stream_pauses(&mut self, n_units: usize) {
        if n_units == 0 {
            return;
        }
        let cmds = std::mem::take(&mut self.cmds);
        self.cmds.push(Cmd::Pause(Pause::Stream(0)));
        for cmd in cmds {
            let unit = match &cmd {
                Cmd::Dispatch(op) => op.unit,
                _ => None,
            };
            self.cmds.push(cmd);
            if let Some(u) = unit.filter(|u| u + 1 < n_units) {
                self.cmds.push(Cmd::Pause(Pause::Stream(u + 1)));
            }
        }
    }

    pub fn dispatch_count(&self) -> usize {
        self.cmds
            .iter()
            .filter(|c| matches!(c, Cmd::Dispatch(_)))
            .count()
    }

    /// The names of the dispatches, in order (what a profile reports).
    pub fn dispatch_names(&self) -> impl Iterator<Item = &str> {
        self.cmds.iter().filter_map(|c| match c {
            Cmd::Dispatch(op) => Some(op.name.as_str()),
            _ => None,
        })
    }

    /// The kernel of each dispatch, in order (the kernel bench tells its ops apart).
    pub fn dispatch_kernels(&self) -> impl Iterator<Item = super::kernels::Kernel> + '_ {
        self.cmds.iter().filter_map(|c| match c {
            Cmd::Dispatch(op) => Some(op.key.kernel),
            _ => None,
        })
    }

    /// Writes the step uniform, records every command for `step.n_tokens` tokens, copies
    /// `result` (bytes from the start of the buffer) into `readback`, submits (once, or
    /// once more per pause through `hook`).
    pub fn submit(
        &self,
        ctx: &GpuContext,
        step_buffer: &Buffer,
        step: StepParams,
        result: (&Buffer, u64),
        readback: &Readback,
        hook: &mut PauseHook<'_>,
    ) -> Result<()> {
        ctx.queue
            .write_buffer(step_buffer, 0, bytemuck::bytes_of(&step));
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.record(ctx, &mut encoder, step.n_tokens, hook, None)?;
        encoder.copy_buffer_to_buffer(result.0, 0, readback.buffer(), 0, result.1);
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// Records every command for `n_tokens` tokens into `encoder`, handing pauses to
    /// `hook`. Dispatches share compute passes between copies and pauses; with
    /// `timestamps`, each dispatch i gets a pass of its own that writes queries 2i
    /// (begin) and 2i + 1 (end), for the profiler.
    pub(super) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        n_tokens: u32,
        hook: &mut PauseHook<'_>,
        timestamps: Option<&wgpu::QuerySet>,
    ) -> Result<()> {
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut dispatched = 0u32;
        for cmd in &self.cmds {
            match cmd {
                Cmd::Dispatch(op) => {
                    if let Some(queries) = timestamps {
                        let i = dispatched;
                        let mut own = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                query_set: queries,
                                beginning_of_pass_write_index: Some(2 * i),
                                end_of_pass_write_index: Some(2 * i + 1),
                            }),
                        });
                        op.record(&mut own, n_tokens);
                    } else {
                        let p = pass.get_or_insert_with(|| {
                            encoder
                                .begin_compute_pass(&Default::default())
                                .forget_lifetime()
                        });
                        op.record(p, n_tokens);
                    }
                    dispatched += 1;
                }
                Cmd::CopyLastRow {
                    src,
                    dst,
                    row_bytes,
                } => {
                    pass = None;
                    let offset = u64::from(n_tokens.saturating_sub(1)) * row_bytes;
                    encoder.copy_buffer_to_buffer(src, offset, dst, 0, *row_bytes);
                }
                Cmd::Pause(p) => {
                    pass = None;
                    let mut enc = Encoder { ctx, enc: encoder };
                    hook(*p, &mut enc)?;
                }
            }
        }
        Ok(())
    }
}
