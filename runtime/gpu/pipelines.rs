//! WGSL composition and the pipeline cache.
//!
//! A kernel's WGSL module is composed from its [`KernelSpec`] (see
//! [`super::kernels`]): the KV element type, the kernel's aliases and constants,
//! `common.wgsl`, the format's weight reader (dequantizing `dq8` or integer-dot `q8w`)
//! where it reads weights, its shared headers and its body. The set of variants is
//! [`PipelineKey::all`]: each kernel once per format or KV type it takes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::quant::WeightFormat;
use crate::gpu::kernels::{Binding, Kernel, WeightReader};
use crate::gpu::tables::{grid_name, push_lookup_table, upload_grid};

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
        WeightFormat::Q2_K => include_str!("../../shaders/formats/q2_k.wgsl"),
        WeightFormat::Q3_K => include_str!("../../shaders/formats/q3_k.wgsl"),
        WeightFormat::IQ4_NL => include_str!("../../shaders/formats/iq4_nl.wgsl"),
        WeightFormat::IQ4_XS => include_str!("../../shaders/formats/iq4_xs.wgsl"),
        WeightFormat::IQ2_XXS => include_str!("../../shaders/formats/iq2_xxs.wgsl"),
        WeightFormat::IQ2_XS => include_str!("../../shaders/formats/iq2_xs.wgsl"),
        WeightFormat::IQ2_S => include_str!("../../shaders/formats/iq2_s.wgsl"),
        WeightFormat::IQ3_XXS => include_str!("../../shaders/formats/iq3_xxs.wgsl"),
        WeightFormat::IQ3_S => include_str!("../../shaders/formats/iq3_s.wgsl"),
        WeightFormat::IQ1_S => include_str!("../../shaders/formats/iq1_s.wgsl"),
        WeightFormat::IQ1_M => include_str!("../../shaders/formats/iq1_m.wgsl"),
    }
}

/// A format's integer-dot block reader (shaders/q8dot/) for the kernels on 8-bit
/// activations.
#[derive(Clone, Copy, Debug)]
pub struct Q8Reader {
    pub source: &'static str,
    /// The reader defines its own `q8w4` (four blocks sharing loads); the others get
    /// q8dot/group.wgsl's four `q8w`. Also declared to the WGSL as `Q8W4_SHARES_LOADS`.
    pub own_q8w4: bool,
    /// The rows per group ([`super::buffers::RowLayout::Groups`]) in which its kernels
    /// read the weights fastest on lavapipe, 1 for the file's order, measured with
    /// matrices larger than the CPU's last-level cache, as a model's are
    /// (docs/performance.md, "Rows in groups"): 64 (a workgroup's rows) for the readers
    /// that the matvec walks a block at a time; Q4_K, whose matvec takes half a
    /// super-block at a time (`q8w4`), 4; Q6_K (`q8w4` too) gained in no group size.
    pub row_group: u32,
}

/// The integer-dot reader of a format, for the formats whose matvecs and matmuls run on
/// 8-bit activations on CPU-backed devices: every quantized format. The float formats
/// keep the f32 kernels.
pub fn q8dot_reader(f: WeightFormat) -> Option<Q8Reader> {
    use WeightFormat as F;
    // (source, own q8w4)
    let (source, own_q8w4) = match f {
        F::Q4_0 => (include_str!("../../shaders/q8dot/q4_0.wgsl"), false),
        F::Q4_1 => (include_str!("../../shaders/q8dot/q4_1.wgsl"), false),
        F::Q8_0 => (include_str!("../../shaders/q8dot/q8_0.wgsl"), false),
        F::Q5_0 => (include_str!("../../shaders/q8dot/q5_0.wgsl"), false),
        F::Q5_1 => (include_str!("../../shaders/q8dot/q5_1.wgsl"), false),
        F::Q4_K => (include_str!("../../shaders/q8dot/q4_k.wgsl"), true),
        F::Q5_K => (include_str!("../../shaders/q8dot/q5_k.wgsl"), false),
        F::Q6_K => (include_str!("../../shaders/q8dot/q6_k.wgsl"), true),
        F::Q2_K => (include_str!("../../shaders/q8dot/q2_k.wgsl"), false),
        F::Q3_K => (include_str!("../../shaders/q8dot/q3_k.wgsl"), false),
        F::IQ4_NL => (include_str!("../../shaders/q8dot/iq4_nl.wgsl"), false),
        F::IQ4_XS => (include_str!("../../shaders/q8dot/iq4_xs.wgsl"), false),
        F::IQ2_XXS => (include_str!("../../shaders/q8dot/iq2_xxs.wgsl"), false),
        F::IQ2_XS => (include_str!("../../shaders/q8dot/iq2_xs.wgsl"), false),
        F::IQ2_S => (include_str!("../../shaders/q8dot/iq2_s.wgsl"), false),
        F::IQ3_XXS => (include_str!("../../shaders/q8dot/iq3_xxs.wgsl"), false),
        F::IQ3_S => (include_str!("../../shaders/q8dot/iq3_s.wgsl"), false),
        F::IQ1_S => (include_str!("../../shaders/q8dot/iq1_s.wgsl"), false),
        F::IQ1_M => (include_str!("../../shaders/q8dot/iq1_m.wgsl"), false),
        _ => return None,
    };
    let row_group = match f {
        F::Q4_K => 4,
        F::Q6_K => 1,
        _ => 64,
    };
    Some(Q8Reader {
        source,
        own_q8w4,
        row_group,
    })
}

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const Q8DOT_COMMON: &str = include_str!("../../shaders/q8dot/common.wgsl");
/// q8w4 as four q8w, for the q8dot formats that do not define their own.
const Q8DOT_GROUP: &str = include_str!("../../shaders/q8dot/group.wgsl");
const WEIGHTS: &str = include_str!("../../shaders/weights.wgsl");
/// Workgroup reductions (sum, max) for the kernels that reduce across lanes.
pub const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");

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

    /// Every variant the runtime can select (for the portability test): each weight-reading kernel with each
    /// format it reads, each cache kernel with each KV type, the rest once.
    #[cfg(test)]
    pub fn all() -> Vec<PipelineKey> {
        let mut keys = Vec::new();
        for kernel in Kernel::ALL {
            let spec = kernel.spec();
            match spec.weights {
                WeightReader::Q8Dot => keys.extend(
                    WeightFormat::ALL
                        .iter()
                        .filter(|&&f| q8dot_reader(f).is_some())
                        .map(|&f| Self::with_format(kernel, f)),
                ),
                WeightReader::Dequantize => keys.extend(
                    WeightFormat::ALL
                        .iter()
                        .map(|&f| Self::with_format(kernel, f)),
                ),
                WeightReader::None if spec.kv => {
                    keys.extend([KvType::F16, KvType::F32].map(|kv| Self::with_kv(kernel, kv)))
                }
                WeightReader::None => keys.push(Self::new(kernel)),
            }
        }
        keys
    }

    /// The complete WGSL module for this variant, composed as [`KernelSpec`] says.
    pub fn source(&self) -> Result<String> {
        let spec = self.kernel.spec();
        let mut src = String::new();
        match self.kv {
            Some(KvType::F16) => src.push_str("enable f16;\nalias kv_t = f16;\n"),
            Some(KvType::F32) => src.push_str("alias kv_t = f32;\n"),
            None if spec.kv => return Err(self.missing("a KV type")),
            None => {}
        }
        src.push_str(spec.prelude);
        for (name, value) in spec.consts {
            src.push_str(&format!("const {name}: u32 = {value}u;\n"));
        }
        src.push_str(COMMON);
        if spec.weights == WeightReader::Dequantize {
            let format = self.format.ok_or_else(|| self.missing("a weight format"))?;
            src.push_str(WEIGHTS);
            src.push_str(&format!(
                "const BLOCK_ELEMS: u32 = {}u;\nconst BLOCK_BYTES: u32 = {}u;\n",
                format.block_elems(),
                format.block_bytes()
            ));
            push_lookup_table(&mut src, format);
            src.push_str(format_source(format));
        }
        for header in spec.headers {
            src.push_str(header);
        }
        if spec.weights == WeightReader::Q8Dot {
            let format = self.format.ok_or_else(|| self.missing("a weight format"))?;
            let reader = q8dot_reader(format).ok_or_else(|| self.missing("a q8dot format"))?;
            // Whether the matvec takes four blocks at a time (the reader's own q8w4
            // shares loads between them) or goes block by block.
            src.push_str(&format!(
                "const Q8W4_SHARES_LOADS: bool = {};\n",
                reader.own_q8w4
            ));
            // Q2_K's mins are per 16 weights: q8w_dot adds the activation block's half
            // sums for it (compiled out for the others).
            src.push_str(&format!(
                "const Q8W_HALF_MINS: bool = {};\n",
                format == WeightFormat::Q2_K
            ));
            push_lookup_table(&mut src, format);
            src.push_str(Q8DOT_COMMON);
            src.push_str(reader.source);
            if !reader.own_q8w4 {
                src.push_str(Q8DOT_GROUP);
            }
        }
        src.push_str(spec.body);
        Ok(src)
    }

    fn missing(&self, what: &str) -> Error {
        Error::Internal(format!("pipeline {self:?} needs {what}"))
    }
}

/// A compiled kernel with the bind group layout its bind groups are made from.
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// The bind group of its format's grid ([`super::tables::IQ_GRID_GROUP`]), i-quants only.
    pub iq_grid: Option<wgpu::BindGroup>,
}

/// Pipelines compiled on first use and kept for the life of the model; bind group
/// layouts are shared between kernels with the same binding list (matvec and matmul).
pub struct PipelineCache {
    device: wgpu::Device,
    layouts: HashMap<&'static [Binding], wgpu::BindGroupLayout>,
    pipelines: HashMap<PipelineKey, Arc<Pipeline>>,
    /// Each i-quant grid uploaded once, as the bind group every pipeline of its format
    /// sets, with that group's layout (one uniform buffer).
    grids: HashMap<&'static str, (wgpu::BindGroupLayout, wgpu::BindGroup)>,
}

impl PipelineCache {
    pub fn new(device: &wgpu::Device) -> Self {
        PipelineCache {
            device: device.clone(),
            layouts: HashMap::new(),
            pipelines: HashMap::new(),
            grids: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: PipelineKey) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let spec = key.kernel.spec();
        if spec.subgroups && !self.device.features().contains(wgpu::Features::SUBGROUP) {
            return Err(Error::Internal(format!(
                "{key:?} chosen on a device without subgroups"
            )));
        }
        let bindings = spec.bindings;
        let device = &self.device;
        let layout = self
            .layouts
            .entry(bindings)
            .or_insert_with(|| bind_group_layout(device, bindings))
            .clone();
        let grid = match (spec.weights, key.format.and_then(WeightFormat::grid)) {
            (WeightReader::None, _) | (_, None) => None,
            (_, Some(grid)) => Some(
                self.grids
                    .entry(grid_name(grid))
                    .or_insert_with(|| upload_grid(device, grid))
                    .clone(),
            ),
        };
        let source = key.source()?;
        let label = format!("{key:?}");
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let mut layouts = vec![Some(&layout)];
        if let Some((grid_layout, _)) = &grid {
            layouts.push(Some(grid_layout));
        }
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &layouts,
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
        let p = Arc::new(Pipeline {
            pipeline,
            layout,
            iq_grid: grid.map(|(_, group)| group),
        });
        self.pipelines.insert(key, p.clone());
        Ok(p)
    }
}

pub(super) fn bind_group_layout(
    device: &wgpu::Device,
    bindings: &[Binding],
) -> wgpu::BindGroupLayout {
    let buffer = |ty| wgpu::BindingType::Buffer {
        ty,
        has_dynamic_offset: false,
        min_binding_size: None,
    };
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match b {
                Binding::Uniform => buffer(wgpu::BufferBindingType::Uniform),
                Binding::Read => buffer(wgpu::BufferBindingType::Storage { read_only: true }),
                Binding::ReadWrite => buffer(wgpu::BufferBindingType::Storage { read_only: false }),
                Binding::Texture => wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Uint,
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("edgeseek"),
        entries: &entries,
    })
}

/// Portability beyond Vulkan without the hardware: every WGSL variant the runtime can
/// select is parsed, validated and translated by naga (the compiler inside wgpu) to
/// SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12). Also catches a WGSL file that
/// defines a constant the composer injects (a redefinition) or uses one it does not.
#[cfg(test)]
mod tests {
    use super::*;
    use naga::back::{hlsl, msl, spv};
    use naga::valid::{Capabilities, ValidationFlags, Validator};

    /// On CPU-backed devices every quantized format's matvecs and matmuls run on 8-bit
    /// activations (issue #16): a real Q4_K_M file whose rows are not multiples of 256
    /// is mostly Q5_0, and a format without a reader would fall back to the f32 kernels.
    /// Only the float formats keep them.
    #[test]
    fn every_quantized_format_has_an_integer_dot_reader() {
        for f in WeightFormat::ALL {
            let float = matches!(
                f,
                WeightFormat::F32 | WeightFormat::F16 | WeightFormat::BF16
            );
            assert_eq!(q8dot_reader(f).is_some(), !float, "{}", f.name());
        }
    }

    #[test]
    fn every_kernel_variant_translates_to_spirv_msl_and_hlsl() {
        let keys = PipelineKey::all();
        // 6 format kernels x 22 formats + the integer-dot matvecs (weights in a buffer
        // or a texture, input in a uniform or a storage buffer) and matmuls (weights in
        // a buffer or a texture, activations shared through subgroups or not) x the 19
        // quantized formats + 4 cache kernels x 2 KV types + 7 others.
        assert_eq!(keys.len(), 6 * 22 + 8 * 19 + 4 * 2 + 7);
        for key in keys {
            let src = key.source().unwrap();
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&src)));
            // Core WGSL only: unpack2x16float (F16 weights, f16 scales of quantized blocks)
            // is core WebGPU, which naga calls SHADER_FLOAT16_IN_FLOAT32 because old GL ES
            // lacks it; the runtime checks the adapter for it. An f16 KV cache adds f16
            // storage (SHADER_F16), which the runtime requests only where it exists.
            let mut caps = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
            if key.kv == Some(KvType::F16) {
                caps |= Capabilities::SHADER_FLOAT16;
            }
            // The subgroup kernels (matvec, shuffled matmul) are selected only where the
            // device has SUBGROUP.
            if key.kernel.spec().subgroups {
                caps |= Capabilities::SUBGROUP;
            }
            let info = Validator::new(ValidationFlags::all(), caps)
                .validate(&module)
                .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&src)));

            let spv_opts = spv::Options::default();
            let spv_pipe = spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: "main".into(),
            };
            let words = spv::write_vec(&module, &info, &spv_opts, Some(&spv_pipe))
                .unwrap_or_else(|e| panic!("{key:?} -> SPIR-V: {e}"));
            assert!(words.len() > 5, "{key:?}: empty SPIR-V");

            let msl_opts = msl::Options {
                lang_version: (2, 4),
                ..Default::default()
            };
            let (metal, _) =
                msl::write_string(&module, &info, &msl_opts, &msl::PipelineOptions::default())
                    .unwrap_or_else(|e| panic!("{key:?} -> MSL: {e}"));
            assert!(metal.contains("kernel"), "{key:?}: MSL has no kernel");

            let hlsl_opts = hlsl::Options {
                shader_model: hlsl::ShaderModel::V6_2,
                ..Default::default()
            };
            let mut text = String::new();
            let hlsl_pipe = hlsl::PipelineOptions::default();
            let mut w = hlsl::Writer::new(&mut text, &hlsl_opts, &hlsl_pipe);
            w.write(&module, &info, None)
                .unwrap_or_else(|e| panic!("{key:?} -> HLSL: {e}"));
            assert!(
                text.contains("numthreads"),
                "{key:?}: HLSL has no compute entry"
            );
        }
    }
}
