//! WGSL composition and the pipeline cache.
//!
//! A kernel's source is a short header (the KV element type), `common.wgsl`, the weight
//! byte readers and the format's `dq8` (for kernels that read quantized weights) and the op body. The set of
//! variants is the explicit table in [`PipelineKey::all`], nothing combinatorial.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;

/// The compute kernels, one per `.wgsl` op body in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Embed,
    MatVec,
    /// matvec with subgroup reductions, where the device has subgroups.
    MatVecSubgroup,
    /// matvec on 8-bit activation blocks with integer dot products, for CPU-backed
    /// devices and the formats in [`q8dot_source`].
    MatVecQ8,
    /// Activations to the 8-bit blocks MatVecQ8 and MatMulQ8 read.
    QuantizeQ8,
    MatMul,
    /// matmul without workgroup memory, for CPU-backed devices.
    MatMulRows,
    /// MatMulRows on 8-bit activation blocks with integer dot products (the prefill
    /// twin of MatVecQ8).
    MatMulQ8,
    RmsNorm,
    /// rope.wgsl writing f32 rows (queries).
    RopeToF32,
    /// rope.wgsl writing into the KV cache (keys, and values with no rotation).
    RopeToCache,
    Attention,
    /// attention.wgsl sized for MLA's latent heads (576 wide).
    AttentionWide,
    /// Barrier-free attention, one query per invocation: prefill on CPU-backed devices.
    AttentionRows,
    SiluMul,
    /// A matrix per attention head (MLA's k_b absorption and v_b expansion).
    HeadMatVec,
    /// The transposed per-head product (the key half of a legacy attn_kv_b).
    HeadMatVecT,
    /// acc += w[k] * y (one routed expert into the token's MoE sum).
    Axpy,
}

/// Element type of the KV cache: f16 where the device has SHADER_F16, else f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvType {
    F16,
    F32,
}

impl KvType {
    pub fn bytes(self) -> u64 {
        match self {
            KvType::F16 => 2,
            KvType::F32 => 4,
        }
    }
}

/// Identifies one compiled pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub kernel: Kernel,
    /// The weight format, for kernels that read quantized weights.
    pub format: Option<WeightFormat>,
    /// The KV element type, for kernels that touch the cache.
    pub kv: Option<KvType>,
}

/// How a binding is declared; the bind group layout follows from the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    Uniform,
    Read,
    ReadWrite,
}

use Binding::{Read, ReadWrite, Uniform};

impl Kernel {
    pub const ALL: [Kernel; 18] = [
        Kernel::Embed,
        Kernel::MatVec,
        Kernel::MatVecSubgroup,
        Kernel::MatVecQ8,
        Kernel::QuantizeQ8,
        Kernel::MatMul,
        Kernel::MatMulRows,
        Kernel::MatMulQ8,
        Kernel::RmsNorm,
        Kernel::RopeToF32,
        Kernel::RopeToCache,
        Kernel::Attention,
        Kernel::AttentionWide,
        Kernel::AttentionRows,
        Kernel::SiluMul,
        Kernel::HeadMatVec,
        Kernel::HeadMatVecT,
        Kernel::Axpy,
    ];

    /// Reads weights through the format's dequantizing reader (weights.wgsl and
    /// shaders/formats/). The q8dot kernels have their own readers instead.
    fn uses_format(self) -> bool {
        matches!(
            self,
            Kernel::Embed
                | Kernel::MatVec
                | Kernel::MatVecSubgroup
                | Kernel::MatMul
                | Kernel::MatMulRows
                | Kernel::HeadMatVec
                | Kernel::HeadMatVecT
        )
    }

    /// Uses the workgroup reductions of reduce.wgsl.
    fn uses_reduce(self) -> bool {
        matches!(
            self,
            Kernel::RmsNorm
                | Kernel::RopeToF32
                | Kernel::RopeToCache
                | Kernel::Attention
                | Kernel::AttentionWide
        )
    }

    /// Reads 8-bit activation blocks through the format's q8dot reader.
    pub fn uses_q8dot(self) -> bool {
        matches!(self, Kernel::MatVecQ8 | Kernel::MatMulQ8)
    }

    /// Needs the SUBGROUP feature.
    pub fn uses_subgroups(self) -> bool {
        matches!(self, Kernel::MatVecSubgroup)
    }

    fn uses_kv(self) -> bool {
        matches!(
            self,
            Kernel::RopeToCache | Kernel::Attention | Kernel::AttentionWide | Kernel::AttentionRows
        )
    }

    /// Bindings 0, 1, ... in order, as the WGSL declares them (0: params, 1: step).
    pub fn bindings(self) -> &'static [Binding] {
        match self {
            Kernel::Embed => &[Uniform, Uniform, Read, Read, ReadWrite],
            Kernel::MatVec
            | Kernel::MatVecSubgroup
            | Kernel::MatVecQ8
            | Kernel::MatMul
            | Kernel::MatMulRows
            | Kernel::MatMulQ8 => &[Uniform, Uniform, Read, Read, ReadWrite, Read],
            Kernel::QuantizeQ8 => &[Uniform, Uniform, Read, ReadWrite],
            Kernel::RmsNorm => &[Uniform, Uniform, Read, ReadWrite, Read],
            Kernel::RopeToF32 | Kernel::RopeToCache => {
                &[Uniform, Uniform, Read, ReadWrite, Read, Read]
            }
            Kernel::Attention | Kernel::AttentionWide | Kernel::AttentionRows => {
                &[Uniform, Uniform, Read, Read, Read, ReadWrite]
            }
            Kernel::SiluMul => &[Uniform, Uniform, ReadWrite, Read],
            Kernel::HeadMatVec | Kernel::HeadMatVecT => &[Uniform, Uniform, Read, Read, ReadWrite],
            Kernel::Axpy => &[Uniform, Uniform, ReadWrite, Read, Read],
        }
    }

    fn body(self) -> &'static str {
        match self {
            Kernel::Embed => include_str!("../../shaders/embed.wgsl"),
            Kernel::MatVec => include_str!("../../shaders/matvec.wgsl"),
            Kernel::MatVecSubgroup => include_str!("../../shaders/matvec_subgroup.wgsl"),
            Kernel::MatVecQ8 => include_str!("../../shaders/matvec_q8.wgsl"),
            Kernel::QuantizeQ8 => include_str!("../../shaders/quantize_q8.wgsl"),
            Kernel::MatMul => include_str!("../../shaders/matmul.wgsl"),
            Kernel::MatMulRows => include_str!("../../shaders/matmul_rows.wgsl"),
            Kernel::MatMulQ8 => include_str!("../../shaders/matmul_q8.wgsl"),
            Kernel::RmsNorm => include_str!("../../shaders/rmsnorm.wgsl"),
            Kernel::RopeToF32 | Kernel::RopeToCache => include_str!("../../shaders/rope.wgsl"),
            Kernel::Attention | Kernel::AttentionWide => {
                include_str!("../../shaders/attention.wgsl")
            }
            Kernel::AttentionRows => include_str!("../../shaders/attention_rows.wgsl"),
            Kernel::SiluMul => include_str!("../../shaders/silu_mul.wgsl"),
            Kernel::HeadMatVec => include_str!("../../shaders/head_matvec.wgsl"),
            Kernel::HeadMatVecT => include_str!("../../shaders/head_matvec_t.wgsl"),
            Kernel::Axpy => include_str!("../../shaders/axpy.wgsl"),
        }
    }
}

fn format_source(f: WeightFormat) -> &'static str {
    match f {
        WeightFormat::F32 => include_str!("../../shaders/formats/f32.wgsl"),
        WeightFormat::F16 => include_str!("../../shaders/formats/f16.wgsl"),
        WeightFormat::BF16 => include_str!("../../shaders/formats/bf16.wgsl"),
        WeightFormat::Q8_0 => include_str!("../../shaders/formats/q8_0.wgsl"),
        WeightFormat::Q4_0 => include_str!("../../shaders/formats/q4_0.wgsl"),
        WeightFormat::Q4_1 => include_str!("../../shaders/formats/q4_1.wgsl"),
        WeightFormat::Q5_0 => include_str!("../../shaders/formats/q5_0.wgsl"),
        WeightFormat::Q5_1 => include_str!("../../shaders/formats/q5_1.wgsl"),
        WeightFormat::Q4_K => include_str!("../../shaders/formats/q4_k.wgsl"),
        WeightFormat::Q5_K => include_str!("../../shaders/formats/q5_k.wgsl"),
        WeightFormat::Q6_K => include_str!("../../shaders/formats/q6_k.wgsl"),
    }
}

/// The integer-dot block reader of a format (shaders/q8dot/), for the formats whose
/// matvec runs on 8-bit activations. The others keep the f32 kernels.
pub fn q8dot_source(f: WeightFormat) -> Option<&'static str> {
    Some(match f {
        WeightFormat::Q4_0 => include_str!("../../shaders/q8dot/q4_0.wgsl"),
        WeightFormat::Q4_1 => include_str!("../../shaders/q8dot/q4_1.wgsl"),
        WeightFormat::Q8_0 => include_str!("../../shaders/q8dot/q8_0.wgsl"),
        WeightFormat::Q4_K => include_str!("../../shaders/q8dot/q4_k.wgsl"),
        WeightFormat::Q5_K => include_str!("../../shaders/q8dot/q5_k.wgsl"),
        WeightFormat::Q6_K => include_str!("../../shaders/q8dot/q6_k.wgsl"),
        _ => return None,
    })
}

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const Q8DOT_COMMON: &str = include_str!("../../shaders/q8dot/common.wgsl");
/// q8w4 as four q8w, for the q8dot formats that do not define their own.
const Q8DOT_GROUP: &str = include_str!("../../shaders/q8dot/group.wgsl");
const WEIGHTS: &str = include_str!("../../shaders/weights.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const MAT_COMMON: &str = include_str!("../../shaders/mat_common.wgsl");
const HEAD_COMMON: &str = include_str!("../../shaders/head_common.wgsl");
const ATTN_COMMON: &str = include_str!("../../shaders/attn_common.wgsl");
const Q8_INPUT: &str = include_str!("../../shaders/q8_input.wgsl");

impl PipelineKey {
    pub fn new(kernel: Kernel) -> Self {
        PipelineKey {
            kernel,
            format: None,
            kv: None,
        }
    }
    pub fn with_format(kernel: Kernel, format: WeightFormat) -> Self {
        PipelineKey {
            kernel,
            format: Some(format),
            kv: None,
        }
    }
    pub fn with_kv(kernel: Kernel, kv: KvType) -> Self {
        PipelineKey {
            kernel,
            format: None,
            kv: Some(kv),
        }
    }

    /// Every variant the runtime can select: each format-reading kernel with each
    /// format, each cache kernel with each KV type, the rest once.
    pub fn all() -> Vec<PipelineKey> {
        let mut keys = Vec::new();
        for kernel in Kernel::ALL {
            if kernel.uses_q8dot() {
                keys.extend(
                    WeightFormat::ALL
                        .iter()
                        .filter(|&&f| q8dot_source(f).is_some())
                        .map(|&f| Self::with_format(kernel, f)),
                );
            } else if kernel.uses_format() {
                keys.extend(
                    WeightFormat::ALL
                        .iter()
                        .map(|&f| Self::with_format(kernel, f)),
                );
            } else if kernel.uses_kv() {
                keys.extend([KvType::F16, KvType::F32].map(|kv| Self::with_kv(kernel, kv)));
            } else {
                keys.push(Self::new(kernel));
            }
        }
        keys
    }

    /// The complete WGSL module for this variant.
    pub fn source(&self) -> Result<String> {
        let kernel = self.kernel;
        let mut src = String::new();
        match self.kv {
            Some(KvType::F16) => src.push_str("enable f16;\nalias kv_t = f16;\n"),
            Some(KvType::F32) => src.push_str("alias kv_t = f32;\n"),
            None if kernel.uses_kv() => return Err(self.missing("a KV type")),
            None => {}
        }
        match kernel {
            Kernel::RopeToF32 => src.push_str("alias dst_t = f32;\n"),
            Kernel::RopeToCache => src.push_str("alias dst_t = kv_t;\n"),
            // Dense heads up to 256 wide; MLA's latent heads 576 (512 + 64 rope).
            Kernel::Attention => {
                src.push_str("const HD_MAX: u32 = 256u;\nconst V_PER_LANE: u32 = 1u;\n")
            }
            Kernel::AttentionWide => {
                src.push_str("const HD_MAX: u32 = 576u;\nconst V_PER_LANE: u32 = 3u;\n")
            }
            Kernel::AttentionRows => src.push_str("const HD_MAX: u32 = 256u;\n"),
            _ => {}
        }
        src.push_str(COMMON);
        if kernel.uses_format() {
            let format = self.format.ok_or_else(|| self.missing("a weight format"))?;
            src.push_str(WEIGHTS);
            src.push_str(format_source(format));
        }
        if kernel.uses_reduce() {
            src.push_str(REDUCE);
        }
        if matches!(
            kernel,
            Kernel::MatVec
                | Kernel::MatVecSubgroup
                | Kernel::MatVecQ8
                | Kernel::MatMul
                | Kernel::MatMulRows
                | Kernel::MatMulQ8
        ) {
            src.push_str(MAT_COMMON);
        }
        if kernel.uses_q8dot() {
            let format = self.format.ok_or_else(|| self.missing("a weight format"))?;
            src.push_str(Q8_INPUT);
            src.push_str(Q8DOT_COMMON);
            src.push_str(q8dot_source(format).ok_or_else(|| self.missing("a q8dot format"))?);
            if !matches!(format, WeightFormat::Q4_K | WeightFormat::Q6_K) {
                src.push_str(Q8DOT_GROUP);
            }
        }
        if matches!(kernel, Kernel::HeadMatVec | Kernel::HeadMatVecT) {
            src.push_str(HEAD_COMMON);
        }
        if matches!(
            kernel,
            Kernel::Attention | Kernel::AttentionWide | Kernel::AttentionRows
        ) {
            src.push_str(ATTN_COMMON);
        }
        src.push_str(kernel.body());
        Ok(src)
    }

    fn missing(&self, what: &str) -> Error {
        Error::Gpu(format!("internal: pipeline {self:?} needs {what}"))
    }
}

/// A compiled kernel with the bind group layout its bind groups are made from.
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Pipelines compiled on first use and kept for the life of the model; bind group
/// layouts are shared between kernels with the same binding list (matvec and matmul).
pub struct PipelineCache {
    device: wgpu::Device,
    layouts: HashMap<&'static [Binding], wgpu::BindGroupLayout>,
    pipelines: HashMap<PipelineKey, Arc<Pipeline>>,
}

impl PipelineCache {
    pub fn new(device: &wgpu::Device) -> Self {
        PipelineCache {
            device: device.clone(),
            layouts: HashMap::new(),
            pipelines: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: PipelineKey) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let bindings = key.kernel.bindings();
        let device = &self.device;
        let layout = self
            .layouts
            .entry(bindings)
            .or_insert_with(|| bind_group_layout(device, bindings))
            .clone();
        let source = key.source()?;
        let label = format!("{key:?}");
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("compiling {label}: {err}")));
        }
        let p = Arc::new(Pipeline { pipeline, layout });
        self.pipelines.insert(key, p.clone());
        Ok(p)
    }
}

fn bind_group_layout(device: &wgpu::Device, bindings: &[Binding]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b {
                    Binding::Uniform => wgpu::BufferBindingType::Uniform,
                    Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("edgeseek"),
        entries: &entries,
    })
}
