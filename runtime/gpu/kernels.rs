//! One small recipe per kernel: the params struct the WGSL declares, the buffers it
//! binds, and how many workgroups a step of `n_tokens` tokens needs. A recipe builds an
//! [`Op`] once at load; recording an op per step creates nothing.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::buffers::{self, WeightMatrix};
use super::context::GpuContext;
use super::pipelines::{q8dot_source, Kernel, KvType, Pipeline, PipelineCache, PipelineKey};
use crate::error::{Error, Result};

/// Per-step uniform shared by all kernels (WGSL `Step` in shaders/common.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepParams {
    pub n_tokens: u32,
    pub pos0: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    out_row0: u32,
    y_stride: u32,
    x_stride: u32,
    flags: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct QuantParams {
    n: u32,
    x_stride: u32,
    _pad: [u32; 2],
}

/// Bytes of 8-bit activation blocks (shaders/quantize_q8.wgsl) for `n` values of one
/// token: a byte per value plus an f32 pair per 32, padded to 16 bytes (the readers
/// load vec4s). Tokens follow one another.
pub fn q8_bytes(n: u32) -> u64 {
    (u64::from(n) + u64::from(n / 32) * 8).next_multiple_of(16)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct EmbedParams {
    n_cols: u32,
    row_bytes: u32,
    row0: u32,
    n_rows: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct NormParams {
    n_cols: u32,
    eps: f32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RopeParams {
    head_dim: u32,
    n_heads: u32,
    src_stride: u32,
    n_rot: u32,
    dst_stride: u32,
    flags: u32,
    eps: f32,
    mscale: f32,
    src_head: u32,
    src_off: u32,
    dst_head: u32,
    dst_off: u32,
    rot0: u32,
    norm_n: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AttnParams {
    head_dim: u32,
    head_dim_v: u32,
    n_heads: u32,
    n_kv_heads: u32,
    q_stride: u32,
    k_stride: u32,
    v_stride: u32,
    o_stride: u32,
    scale: f32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct HeadParams {
    rows: u32,
    n_cols: u32,
    row_bytes: u32,
    head_rows: u32,
    row_off: u32,
    x_stride: u32,
    x_head: u32,
    x_off: u32,
    y_stride: u32,
    y_head: u32,
    y_off: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AxpyParams {
    n: u32,
    k: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct GluParams {
    n: u32,
    _pad: [u32; 3],
}

const MAT_FLAG_BIAS: u32 = 1;
const MAT_FLAG_ACCUMULATE: u32 = 2;
const ROPE_FLAG_NEOX: u32 = 1;
const ROPE_FLAG_NORM: u32 = 2;
const ROPE_FLAG_DST_AT_POS: u32 = 4;

/// Rows per workgroup of matvec.wgsl / matvec_subgroup.wgsl and the tile of matmul.wgsl.
const MATVEC_ROWS: u32 = 4;
const MATVEC_SUBGROUP_ROWS: u32 = 16;
const MATVEC_Q8_ROWS: u32 = 64;
const MATMUL_ROWS: u32 = 32;
const MATMUL_TOKENS: u32 = 16;
const MATMUL_ROWS_ROWS: u32 = 64;
const MATMUL_ROWS_TOKENS: u32 = 16;
const MATMUL_Q8_ROWS: u32 = 64;
const MATMUL_Q8_TOKENS: u32 = 8;
const ATTENTION_ROWS_QUERIES: u32 = 16;
/// Largest head the rope and attention kernels hold in workgroup memory.
pub const MAX_HEAD_DIM: u32 = 256;
/// Largest MLA cache row (latent + rope key) of rope.wgsl and the wide attention.
pub const MAX_LATENT_DIM: u32 = 576;

/// Workgroup counts as a function of the step's token count.
#[derive(Clone, Copy, Debug)]
enum Grid {
    /// (x, n_tokens, 1)
    PerToken { x: u32 },
    /// (n_tokens * per_token, 1, 1)
    TokenRows { per_token: u32 },
    /// (x, ceil(n_tokens / tokens_per_y), 1)
    TokenTiles { x: u32, tokens_per_y: u32 },
    /// (x, 1, 1) whatever the token count
    Fixed { x: u32 },
    /// (x, heads, n_tokens)
    HeadsTokens { x: u32, heads: u32 },
}

impl Grid {
    fn size(self, n_tokens: u32) -> [u32; 3] {
        match self {
            Grid::PerToken { x } => [x, n_tokens, 1],
            Grid::TokenRows { per_token } => [n_tokens * per_token, 1, 1],
            Grid::TokenTiles { x, tokens_per_y } => [x, n_tokens.div_ceil(tokens_per_y), 1],
            Grid::Fixed { x } => [x, 1, 1],
            Grid::HeadsTokens { x, heads } => [x, heads, n_tokens],
        }
    }
}

/// A dispatch ready to record: pipeline, bind group (params included), grid.
pub struct Op {
    pub name: String,
    pub key: PipelineKey,
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    grid: Grid,
    /// The stream unit whose weights this op reads (streamed dense weights).
    pub unit: Option<usize>,
}

impl Op {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.grid.size(n_tokens);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Builds ops for one model: holds the device, the pipeline cache, the step uniform,
/// the largest token count a step may have, and a dummy buffer for unused bindings.
pub struct OpBuilder<'a> {
    pub ctx: &'a GpuContext,
    pub pipelines: &'a mut PipelineCache,
    pub step: &'a wgpu::Buffer,
    pub max_tokens: u32,
    pub dummy: &'a wgpu::Buffer,
    /// Where streamed weight parts are bound: each gets the next stream unit.
    pub stream: Option<StreamTarget<'a>>,
    /// Scratch for 8-bit activations (max_tokens tokens): with it, matvecs and matmuls
    /// of the formats in q8dot_source run on integer dot products where the profile
    /// says q8_matvec (MatVecQ8, MatMulQ8). None keeps every mat op in f32.
    pub q8: Option<&'a wgpu::Buffer>,
    /// The input the last op built (a mat op) left quantized in `q8`: (x, n_cols,
    /// batched). Consecutive mat ops on the same input (q, k, v; gate, up) quantize it
    /// once; any other op clears it.
    quantized: Option<(wgpu::Buffer, u32, bool)>,
}

/// Streamed parts become units in the order ops are built (graph order); unit u is
/// read from ring slot u % 2.
pub struct StreamTarget<'a> {
    pub ring: &'a [wgpu::Buffer; 2],
    /// (file offset, bytes) of each unit so far.
    pub units: Vec<(u64, u64)>,
}

/// `y (+)= W x (+ bias)` for one matrix, as matvec (one token) or matmul (many).
pub struct MatOp<'b> {
    pub w: &'b WeightMatrix,
    pub x: &'b wgpu::Buffer, // [n_tokens, x_stride] f32
    pub x_stride: u32,
    pub y: &'b wgpu::Buffer, // [n_tokens, w.n_rows] f32
    pub bias: Option<&'b wgpu::Buffer>,
    pub accumulate: bool,
}

/// Rotary embedding (and optional norm) of `n_heads` rows of `head_dim` per token.
pub struct RopeOp<'b> {
    pub src: &'b wgpu::Buffer, // [n_tokens, src_stride] f32
    pub src_stride: u32,
    pub dst: &'b wgpu::Buffer, // [n_tokens or ctx, dst_stride] f32 or kv
    pub dst_stride: u32,
    /// Some(kv): dst is a KV cache of that type, written at each token's position.
    pub to_cache: Option<KvType>,
    pub n_heads: u32,
    pub head_dim: u32,
    pub n_rot: u32,
    pub neox: bool,
    pub inv_freq: Option<&'b wgpu::Buffer>, // [n_rot / 2]
    /// Factor on cos and sin (YaRN); 1 otherwise.
    pub mscale: f32,
    /// ([norm_n] weight, eps, norm_n): RMSNorm of the row's first norm_n values.
    pub norm: Option<(&'b wgpu::Buffer, f32, u32)>,
    /// Where rows sit when heads are not packed back to back (MLA): see [`RowLayout`].
    pub layout: RowLayout,
}

/// Placement of the rows rope reads and writes, and where rotation starts in them.
#[derive(Clone, Copy, Debug)]
pub struct RowLayout {
    pub src_head: u32,
    pub src_off: u32,
    pub dst_head: u32,
    pub dst_off: u32,
    pub rot0: u32,
}

impl RowLayout {
    /// Heads packed back to back in both buffers, rotation from each head's start.
    pub fn packed(head_dim: u32) -> RowLayout {
        RowLayout {
            src_head: head_dim,
            src_off: 0,
            dst_head: head_dim,
            dst_off: 0,
            rot0: 0,
        }
    }
}

/// One weight matrix per head (a 3-D tensor or a run of rows of one), each head
/// multiplying its own slice of the input: see shaders/head_common.wgsl.
pub struct HeadOp<'b> {
    pub w: &'b WeightMatrix,
    /// Multiply by the transpose of each head's rows (head_matvec_t.wgsl).
    pub transposed: bool,
    pub n_heads: u32,
    /// Rows of one head that take part, from `row_off`; heads start `head_rows` apart.
    pub rows: u32,
    pub head_rows: u32,
    pub row_off: u32,
    pub x: &'b wgpu::Buffer,
    /// (floats per token, floats between heads, offset)
    pub x_layout: [u32; 3],
    pub y: &'b wgpu::Buffer,
    pub y_layout: [u32; 3],
}

pub struct AttnOp<'b> {
    pub q: &'b wgpu::Buffer,   // [n_tokens, n_heads * head_dim]
    pub k: &'b wgpu::Buffer,   // [ctx, k_stride] kv
    pub v: &'b wgpu::Buffer,   // [ctx, v_stride] kv (MLA: the same buffer as k)
    pub out: &'b wgpu::Buffer, // [n_tokens, n_heads * head_dim_v]
    pub kv: KvType,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub head_dim_v: u32,
    /// Elements per position in the caches.
    pub k_stride: u32,
    pub v_stride: u32,
    pub scale: f32,
}

impl<'a> OpBuilder<'a> {
    pub fn new(
        ctx: &'a GpuContext,
        pipelines: &'a mut PipelineCache,
        step: &'a wgpu::Buffer,
        max_tokens: u32,
        dummy: &'a wgpu::Buffer,
    ) -> Self {
        OpBuilder {
            ctx,
            pipelines,
            step,
            max_tokens,
            dummy,
            stream: None,
            q8: None,
            quantized: None,
        }
    }

    fn op<P: Pod>(
        &mut self,
        name: String,
        key: PipelineKey,
        params: &P,
        buffers: &[&wgpu::Buffer],
        grid: Grid,
    ) -> Result<Op> {
        let params = buffers::uniform(self.ctx, &name, params);
        let bindings: Vec<_> = buffers
            .iter()
            .map(|b| b.as_entire_buffer_binding())
            .collect();
        self.op_bound(name, key, &params, &bindings, grid)
    }

    /// An op whose params uniform already exists (shared between ops) and whose
    /// buffers may be ranges of larger buffers (expert cache slots).
    fn op_bound(
        &mut self,
        name: String,
        key: PipelineKey,
        params: &wgpu::Buffer,
        buffers: &[wgpu::BufferBinding<'_>],
        grid: Grid,
    ) -> Result<Op> {
        self.quantized = None;
        let [x, y, z] = grid.size(self.max_tokens);
        let max = self.ctx.profile.max_workgroups_per_dim;
        if x.max(y).max(z) > max {
            return Err(Error::Limit {
                what: format!("workgroups per dimension for {name}"),
                needed: u64::from(x.max(y).max(z)),
                limit: u64::from(max),
            });
        }
        let pipeline = self.pipelines.get(key)?;
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: self.step.as_entire_binding(),
            },
        ];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 2,
                resource: wgpu::BindingResource::Buffer(b.clone()),
            });
        }
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&name),
                layout: &pipeline.layout,
                entries: &entries,
            });
        Ok(Op {
            name,
            key,
            pipeline,
            bind_group,
            grid,
            unit: None,
        })
    }

    /// One op per part of the matrix (after a quantize op where the input is not
    /// quantized yet). `batched` picks matmul (prefill) over matvec.
    pub fn mat(&mut self, name: &str, m: &MatOp<'_>, batched: bool) -> Result<Vec<Op>> {
        let mut ops = Vec::new();
        let q8 = self.quantize_input(name, m, batched, &mut ops)?;
        let profile = &self.ctx.profile;
        let kernel = match (batched, profile.subgroups) {
            (false, _) if q8.is_some() => Kernel::MatVecQ8,
            (true, _) if q8.is_some() => Kernel::MatMulQ8,
            (true, _) if profile.cpu_device => Kernel::MatMulRows,
            (true, _) => Kernel::MatMul,
            (false, true) => Kernel::MatVecSubgroup,
            (false, false) => Kernel::MatVec,
        };
        let key = PipelineKey::with_format(kernel, m.w.format);
        let mut flags = 0;
        if m.bias.is_some() {
            flags |= MAT_FLAG_BIAS;
        }
        if m.accumulate {
            flags |= MAT_FLAG_ACCUMULATE;
        }
        for (i, part) in m.w.parts.iter().enumerate() {
            let params = MatParams {
                n_rows: part.n_rows,
                n_cols: m.w.n_cols,
                row_bytes: m.w.row_bytes,
                out_row0: part.row0,
                y_stride: m.w.n_rows,
                x_stride: m.x_stride,
                flags,
                _pad: 0,
            };
            let grid = if kernel == Kernel::MatMulRows {
                Grid::TokenTiles {
                    x: part.n_rows.div_ceil(MATMUL_ROWS_ROWS),
                    tokens_per_y: MATMUL_ROWS_TOKENS,
                }
            } else if kernel == Kernel::MatMulQ8 {
                Grid::TokenTiles {
                    x: part.n_rows.div_ceil(MATMUL_Q8_ROWS),
                    tokens_per_y: MATMUL_Q8_TOKENS,
                }
            } else if batched {
                Grid::TokenTiles {
                    x: part.n_rows.div_ceil(MATMUL_ROWS),
                    tokens_per_y: MATMUL_TOKENS,
                }
            } else if kernel == Kernel::MatVecSubgroup {
                Grid::Fixed {
                    x: part.n_rows.div_ceil(MATVEC_SUBGROUP_ROWS),
                }
            } else if kernel == Kernel::MatVecQ8 {
                Grid::Fixed {
                    x: part.n_rows.div_ceil(MATVEC_Q8_ROWS),
                }
            } else {
                Grid::Fixed {
                    x: part.n_rows.div_ceil(MATVEC_ROWS),
                }
            };
            let bias = m.bias.unwrap_or(self.dummy);
            let params = buffers::uniform(self.ctx, name, &params);
            let mut unit = None;
            let w = match part.source {
                None => part.binding(),
                Some(src) => {
                    let st = self.stream.as_mut().ok_or_else(|| {
                        Error::Gpu(format!("internal: streamed {name} without a stream ring"))
                    })?;
                    let u = st.units.len();
                    st.units.push(src);
                    unit = Some(u);
                    let ring: &[wgpu::Buffer; 2] = st.ring;
                    wgpu::BufferBinding {
                        buffer: &ring[u % 2],
                        offset: 0,
                        size: wgpu::BufferSize::new(part.size),
                    }
                }
            };
            let bufs = [
                w,
                q8.as_ref().unwrap_or(m.x).as_entire_buffer_binding(),
                m.y.as_entire_buffer_binding(),
                bias.as_entire_buffer_binding(),
            ];
            let mut op = self.op_bound(format!("{name}[{i}]"), key, &params, &bufs, grid)?;
            op.unit = unit;
            ops.push(op);
        }
        if q8.is_some() {
            self.quantized = Some((m.x.clone(), m.w.n_cols, batched));
        }
        Ok(ops)
    }

    /// The 8-bit copy of `m.x` a MatVecQ8 or MatMulQ8 reads, with the op that makes it
    /// pushed onto `ops` unless the previous mat op already quantized the same input;
    /// None where the op stays in f32 (no q8 scratch, a GPU, or a format without
    /// q8dot). A matvec's input is one token even inside a prefill step (the output
    /// head reads xn_last), so only batched inputs are quantized for every token.
    fn quantize_input(
        &mut self,
        name: &str,
        m: &MatOp<'_>,
        batched: bool,
        ops: &mut Vec<Op>,
    ) -> Result<Option<wgpu::Buffer>> {
        let Some(q8) = self.q8 else {
            return Ok(None);
        };
        if !self.ctx.profile.q8_matvec || q8dot_source(m.w.format).is_none() {
            return Ok(None);
        }
        let n = m.w.n_cols;
        let key = (m.x.clone(), n, batched);
        if self.quantized.as_ref() == Some(&key) {
            return Ok(Some(q8.clone()));
        }
        let tokens = if batched { self.max_tokens } else { 1 };
        let bytes = u64::from(tokens) * q8_bytes(n);
        if bytes > q8.size() {
            return Err(Error::Gpu(format!(
                "internal: {name} needs {bytes} bytes of 8-bit activations, the scratch has {}",
                q8.size()
            )));
        }
        let params = QuantParams {
            n,
            x_stride: m.x_stride,
            _pad: [0; 2],
        };
        let key = PipelineKey::new(Kernel::QuantizeQ8);
        let x = (n / 32).div_ceil(64);
        let grid = match batched {
            true => Grid::PerToken { x },
            false => Grid::Fixed { x },
        };
        ops.push(self.op(format!("{name}.q8"), key, &params, &[m.x, q8], grid)?);
        Ok(Some(q8.clone()))
    }

    /// out[t] = dequantized row tokens[t] of `table`, one op per part.
    pub fn embed(
        &mut self,
        table: &WeightMatrix,
        tokens: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<Vec<Op>> {
        let key = PipelineKey::with_format(Kernel::Embed, table.format);
        let mut ops = Vec::new();
        for (i, part) in table.parts.iter().enumerate() {
            let params = EmbedParams {
                n_cols: table.n_cols,
                row_bytes: table.row_bytes,
                row0: part.row0,
                n_rows: part.n_rows,
            };
            let grid = Grid::PerToken {
                x: (table.n_cols / 8).div_ceil(64),
            };
            let params = buffers::uniform(self.ctx, "embed", &params);
            let bufs = [
                part.binding(),
                tokens.as_entire_buffer_binding(),
                out.as_entire_buffer_binding(),
            ];
            ops.push(self.op_bound(format!("embed[{i}]"), key, &params, &bufs, grid)?);
        }
        Ok(ops)
    }

    /// out[r] = rmsnorm(x[r]) * weight for `rows_per_token` rows of `n_cols` per token.
    pub fn rms_norm(
        &mut self,
        name: &str,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        n_cols: u32,
        eps: f32,
    ) -> Result<Op> {
        let params = NormParams {
            n_cols,
            eps,
            _pad: [0; 2],
        };
        let key = PipelineKey::new(Kernel::RmsNorm);
        let grid = Grid::TokenRows { per_token: 1 };
        self.op(name.to_string(), key, &params, &[x, out, weight], grid)
    }

    pub fn rope(&mut self, name: &str, r: &RopeOp<'_>) -> Result<Op> {
        let l = r.layout;
        let norm_n = r.norm.map_or(0, |(_, _, n)| n);
        if r.head_dim > MAX_LATENT_DIM
            || r.n_rot % 2 != 0
            || l.rot0 + r.n_rot > r.head_dim
            || norm_n > r.head_dim
        {
            return Err(Error::Invalid(format!(
                "{name}: rows of {} / rope dims {} from {} / norm {norm_n} (at most {MAX_LATENT_DIM}, even, inside the row)",
                r.head_dim, r.n_rot, l.rot0
            )));
        }
        let mut flags = 0;
        if r.neox {
            flags |= ROPE_FLAG_NEOX;
        }
        let mut eps = 0.0;
        if let Some((_, e, _)) = r.norm {
            flags |= ROPE_FLAG_NORM;
            eps = e;
        }
        let key = match r.to_cache {
            Some(kv) => {
                flags |= ROPE_FLAG_DST_AT_POS;
                PipelineKey::with_kv(Kernel::RopeToCache, kv)
            }
            None => PipelineKey::new(Kernel::RopeToF32),
        };
        let params = RopeParams {
            head_dim: r.head_dim,
            n_heads: r.n_heads,
            src_stride: r.src_stride,
            n_rot: r.n_rot,
            dst_stride: r.dst_stride,
            flags,
            eps,
            mscale: r.mscale,
            src_head: l.src_head,
            src_off: l.src_off,
            dst_head: l.dst_head,
            dst_off: l.dst_off,
            rot0: l.rot0,
            norm_n,
            _pad: [0; 2],
        };
        let norm = r.norm.map(|(w, _, _)| w).unwrap_or(self.dummy);
        let inv_freq = r.inv_freq.unwrap_or(self.dummy);
        let grid = Grid::TokenRows {
            per_token: r.n_heads,
        };
        self.op(
            name.to_string(),
            key,
            &params,
            &[r.src, r.dst, norm, inv_freq],
            grid,
        )
    }

    pub fn attention(&mut self, name: &str, a: &AttnOp<'_>) -> Result<Op> {
        let wide = a.head_dim > MAX_HEAD_DIM || a.head_dim_v > MAX_HEAD_DIM;
        if a.head_dim > MAX_LATENT_DIM
            || a.head_dim_v > MAX_LATENT_DIM
            || a.n_kv_heads == 0
            || a.n_heads % a.n_kv_heads != 0
        {
            return Err(Error::Invalid(format!(
                "{name}: {} heads over {} KV heads of {}/{} dims",
                a.n_heads, a.n_kv_heads, a.head_dim, a.head_dim_v
            )));
        }
        // attention.wgsl reads keys and values as vec4s.
        if [a.head_dim, a.head_dim_v, a.k_stride, a.v_stride]
            .iter()
            .any(|n| n % 4 != 0)
        {
            return Err(Error::Invalid(format!(
                "{name}: head widths {}/{} and KV strides {}/{} must be multiples of 4",
                a.head_dim, a.head_dim_v, a.k_stride, a.v_stride
            )));
        }
        let params = AttnParams {
            head_dim: a.head_dim,
            head_dim_v: a.head_dim_v,
            n_heads: a.n_heads,
            n_kv_heads: a.n_kv_heads,
            q_stride: a.n_heads * a.head_dim,
            k_stride: a.k_stride,
            v_stride: a.v_stride,
            o_stride: a.n_heads * a.head_dim_v,
            scale: a.scale,
            _pad: [0; 3],
        };
        // Prefill graphs on CPU-backed devices take the barrier-free kernel (one query
        // per invocation); decode keeps a workgroup per query, whose 64 lanes share
        // the keys: one query per invocation leaves the other lanes idle, and SmolLM2's
        // decode attention took 12 ms per token that way against 6 ms (lavapipe).
        let rows = !wide && self.ctx.profile.cpu_device && self.max_tokens > 1;
        let (kernel, grid) = match (wide, rows) {
            (true, _) => (
                Kernel::AttentionWide,
                Grid::TokenRows {
                    per_token: a.n_heads,
                },
            ),
            (false, true) => (
                Kernel::AttentionRows,
                Grid::TokenTiles {
                    x: a.n_heads,
                    tokens_per_y: ATTENTION_ROWS_QUERIES,
                },
            ),
            (false, false) => (
                Kernel::Attention,
                Grid::TokenRows {
                    per_token: a.n_heads,
                },
            ),
        };
        let key = PipelineKey::with_kv(kernel, a.kv);
        self.op(
            name.to_string(),
            key,
            &params,
            &[a.q, a.k, a.v, a.out],
            grid,
        )
    }

    /// Per-head products (see [`HeadOp`]); the matrix must be in one binding.
    pub fn head_matvec(&mut self, name: &str, h: &HeadOp<'_>) -> Result<Op> {
        let [part] = h.w.parts.as_slice() else {
            return Err(Error::Limit {
                what: format!("{name}: per-head matrix in one GPU binding"),
                needed: h.w.gpu_bytes(),
                limit: h.w.parts[0].size,
            });
        };
        let last_row =
            u64::from(h.n_heads - 1) * u64::from(h.head_rows) + u64::from(h.row_off + h.rows);
        if last_row > u64::from(h.w.n_rows) || h.w.n_cols % 8 != 0 {
            return Err(Error::Invalid(format!(
                "{name}: {} heads of {} rows from {} do not fit {} x {}",
                h.n_heads, h.rows, h.row_off, h.w.n_rows, h.w.n_cols
            )));
        }
        let params = HeadParams {
            rows: h.rows,
            n_cols: h.w.n_cols,
            row_bytes: h.w.row_bytes,
            head_rows: h.head_rows,
            row_off: h.row_off,
            x_stride: h.x_layout[0],
            x_head: h.x_layout[1],
            x_off: h.x_layout[2],
            y_stride: h.y_layout[0],
            y_head: h.y_layout[1],
            y_off: h.y_layout[2],
            _pad: 0,
        };
        let (kernel, outputs) = if h.transposed {
            (Kernel::HeadMatVecT, h.w.n_cols / 8)
        } else {
            (Kernel::HeadMatVec, h.rows)
        };
        let key = PipelineKey::with_format(kernel, h.w.format);
        let grid = Grid::HeadsTokens {
            x: outputs.div_ceil(64),
            heads: h.n_heads,
        };
        let params = buffers::uniform(self.ctx, name, &params);
        let bufs = [
            part.binding(),
            h.x.as_entire_buffer_binding(),
            h.y.as_entire_buffer_binding(),
        ];
        self.op_bound(name.to_string(), key, &params, &bufs, grid)
    }

    /// acc += w[k] * y over `n` floats (one token).
    pub fn axpy(
        &mut self,
        name: &str,
        acc: &wgpu::Buffer,
        y: &wgpu::Buffer,
        w: &wgpu::Buffer,
        n: u32,
        k: u32,
    ) -> Result<Op> {
        let params = AxpyParams { n, k, _pad: [0; 2] };
        let key = PipelineKey::new(Kernel::Axpy);
        let grid = Grid::Fixed { x: n.div_ceil(256) };
        self.op(name.to_string(), key, &params, &[acc, y, w], grid)
    }

    /// `y = W x` for one token, with W a range of a larger buffer (an expert cache
    /// slot) and a params uniform shared by every slot of the same layout.
    pub fn slot_matvec(
        &mut self,
        name: String,
        w: &WeightMatrix,
        params: &wgpu::Buffer,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<Op> {
        let kernel = if self.ctx.profile.subgroups {
            Kernel::MatVecSubgroup
        } else {
            Kernel::MatVec
        };
        let rows_per_wg = if self.ctx.profile.subgroups {
            MATVEC_SUBGROUP_ROWS
        } else {
            MATVEC_ROWS
        };
        let key = PipelineKey::with_format(kernel, w.format);
        let part = &w.parts[0];
        let grid = Grid::Fixed {
            x: w.n_rows.div_ceil(rows_per_wg),
        };
        let bufs = [
            part.binding(),
            x.as_entire_buffer_binding(),
            y.as_entire_buffer_binding(),
            self.dummy.as_entire_buffer_binding(),
        ];
        self.op_bound(name, key, params, &bufs, grid)
    }

    /// The params uniform of [`OpBuilder::slot_matvec`] for matrices shaped like `w`.
    pub fn slot_matvec_params(&self, w: &WeightMatrix) -> wgpu::Buffer {
        let params = MatParams {
            n_rows: w.n_rows,
            n_cols: w.n_cols,
            row_bytes: w.row_bytes,
            out_row0: 0,
            y_stride: w.n_rows,
            x_stride: w.n_cols,
            flags: 0,
            _pad: 0,
        };
        buffers::uniform(self.ctx, "expert matvec", &params)
    }

    /// gate = silu(gate) * up over `n` values per token.
    pub fn silu_mul(
        &mut self,
        name: &str,
        gate: &wgpu::Buffer,
        up: &wgpu::Buffer,
        n: u32,
    ) -> Result<Op> {
        let params = GluParams { n, _pad: [0; 3] };
        let key = PipelineKey::new(Kernel::SiluMul);
        let grid = Grid::PerToken { x: n.div_ceil(256) };
        self.op(name.to_string(), key, &params, &[gate, up], grid)
    }
}
