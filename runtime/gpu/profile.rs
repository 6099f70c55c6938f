//! GPU time per dispatch from timestamp queries (where the adapter has TIMESTAMP_QUERY;
//! lavapipe does). Profiling records every dispatch in a compute pass of its own with
//! begin and end timestamps, so it is slower than a normal step: use it to see where
//! time goes, not to measure throughput.

use super::buffers::Readback;
use super::context::GpuContext;
use super::graph::{Graph, PauseHook};
use super::kernels::StepParams;
use super::Buffer;
use crate::error::{Error, Result};

/// wgpu's limit on queries in one set; two per dispatch.
const MAX_QUERIES: u32 = 4096;

/// GPU time of one dispatch, by the op's name (e.g. "blk.3.ffn_down[0]").
#[derive(Clone, Debug)]
pub struct DispatchTime {
    pub name: String,
    pub ns: f64,
}

/// Runs `graph` for `step` with a timestamp pair around every dispatch and returns
/// the GPU time of each, in graph order. `result` is copied to `readback` as usual.
/// Pauses (routed experts, streamed weights) run untimed through `hook`.
pub fn profile_step(
    ctx: &GpuContext,
    graph: &Graph,
    step_buffer: &Buffer,
    step: StepParams,
    result: (&Buffer, u64),
    readback: &Readback,
    hook: &mut PauseHook<'_>,
) -> Result<Vec<DispatchTime>> {
    if !ctx.profile.timestamps {
        return Err(Error::Gpu(format!(
            "adapter '{}' has no timestamp queries: no GPU profile",
            ctx.profile.adapter_name
        )));
    }
    let n = graph.dispatch_count() as u32;
    if 2 * n > MAX_QUERIES {
        return Err(Error::Limit {
            what: "timestamp queries for one profiled step".into(),
            needed: u64::from(2 * n),
            limit: u64::from(MAX_QUERIES),
            unit: "queries",
        });
    }
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count: 2 * n,
    });
    let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile resolve"),
        size: u64::from(2 * n) * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let times = Readback::new(ctx, "profile readback", u64::from(2 * n) * 8);

    ctx.queue
        .write_buffer(step_buffer, 0, bytemuck::bytes_of(&step));
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    graph.record(ctx, &mut encoder, step.n_tokens, hook, Some(&queries))?;
    encoder.resolve_query_set(&queries, 0..2 * n, &resolved, 0);
    encoder.copy_buffer_to_buffer(&resolved, 0, times.buffer(), 0, u64::from(2 * n) * 8);
    encoder.copy_buffer_to_buffer(result.0, 0, readback.buffer(), 0, result.1);
    ctx.queue.submit([encoder.finish()]);

    // Timestamps are u64 ticks, read back as bytes (a Vec<f32> is only 4-byte aligned:
    // casting it to &[u64] may fail).
    let mut raw = vec![0u8; 16 * n as usize];
    times.read_bytes(ctx, &mut raw)?;
    let ticks: Vec<u64> = raw
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8-byte chunks")))
        .collect();
    let period = f64::from(ctx.queue.get_timestamp_period());
    Ok(graph
        .dispatch_names()
        .enumerate()
        .map(|(i, name)| {
            let ns = ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period;
            DispatchTime {
                name: name.to_string(),
                ns,
            }
        })
        .collect())
}
