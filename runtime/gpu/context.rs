//! Adapter and device choice. Everything the rest of the runtime may assume about the
//! GPU is written into a [`DeviceProfile`] here, once; kernels are chosen from it.

use crate::error::{Error, Result};

/// How to pick and configure the GPU.
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    /// Use the first adapter whose name contains this text (case-insensitive).
    pub adapter: Option<String>,
    /// Do not use SHADER_F16 even where the adapter has it (KV cache in f32).
    pub no_f16: bool,
    /// Ask only for wgpu's downlevel limits (16 KiB workgroup storage, 256 invocations,
    /// 4 storage buffers per stage, 128 MiB bindings), as the weakest devices give.
    pub downlevel: bool,
    /// Keep every matvec's and matmul's activations in f32, even where 8-bit activations with
    /// integer dot products are faster (CPU-backed devices): slower, and equal to
    /// dequantize-then-multiply up to f32 rounding.
    pub f32_activations: bool,
    /// Keep the weights the 8-bit kernels read in storage buffers and in the file's row
    /// order, instead of textures and groups of rows (CPU-backed devices): slower on
    /// lavapipe, the same values. For measuring.
    pub buffer_weights: bool,
}

/// Where a device's memory is, as far as the adapter says (wgpu reports no sizes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceMemory {
    /// Integrated GPUs and CPU devices (lavapipe): the host's RAM is the device memory.
    Shared,
    /// A discrete GPU (or a virtual or unknown one): memory of its own, size unknown.
    Dedicated,
}

/// What the runtime may use on the chosen device: the features we requested and the
/// limits we were granted (never the adapter's raw maximums).
#[derive(Clone, Debug)]
pub struct DeviceProfile {
    pub adapter_name: String,
    pub backend: String,
    pub device_type: String,
    /// SHADER_F16 was requested: the KV cache is stored as f16.
    pub f16: bool,
    /// SUBGROUP was requested: reductions (and the 8-bit matmul's shared activation
    /// loads, matmul_shuffle) use subgroup operations.
    pub subgroups: bool,
    /// TIMESTAMP_QUERY was requested: GPU time per kernel can be measured.
    pub timestamps: bool,
    /// The adapter runs on the CPU (lavapipe, SwiftShader): kernels without workgroup
    /// barriers are faster there.
    pub cpu_device: bool,
    /// Whether the device's memory is the host's (decides the default expert budget).
    pub memory: DeviceMemory,
    /// Matvecs and matmuls of the formats with an integer-dot reader quantize their
    /// input to 8-bit blocks and use MatVecQ8 / MatMulQ8: on CPU-backed devices, where
    /// we measured it (faster decode and prefill on lavapipe), unless
    /// DeviceOptions::f32_activations.
    pub q8_matvec: bool,
    /// Dense matrices that the q8dot kernels read are uploaded as textures
    /// ([`super::buffers::WeightTexture`], [`super::buffers::Placement::of`]). Set with
    /// q8_matvec, unless DeviceOptions::buffer_weights.
    pub weight_textures: bool,
    /// Dense matrices that the q8dot kernels read are uploaded in groups of rows
    /// ([`super::buffers::RowLayout::of`]): on CPU-backed devices, where we measured
    /// it, with q8_matvec, unless DeviceOptions::buffer_weights.
    pub row_groups: bool,
    /// The 8-bit matmul's lanes share their tokens' activation loads through subgroup
    /// shuffles (MatMulQ8Shuffle, MatMulQ8TexShuffle) instead of each loading all 8
    /// (MatMulQ8, MatMulQ8Tex). Only on CPU-backed devices, where it was measured, with
    /// subgroups requested and at least 8 lanes (AdapterInfo::subgroup_min_size): the
    /// kernel assumes that its workgroup of 8 invocations is then one subgroup with
    /// lanes 0..7, which is how lavapipe (8 lanes, one per SIMD lane) runs it, though
    /// Vulkan does not promise it; the kernel tests check it on the test adapter.
    pub matmul_shuffle: bool,
    pub max_storage_binding: u64,
    /// Widest and tallest 2-D texture (weight textures).
    pub max_texture_dim: u32,
    /// Largest uniform buffer binding (the 8-bit matvec's activations).
    pub max_uniform_binding: u64,
    pub max_buffer_size: u64,
    pub max_workgroup_storage: u32,
    pub max_invocations: u32,
    pub max_workgroups_per_dim: u32,
    pub max_storage_buffers_per_stage: u32,
}

/// A device and queue plus the profile that describes them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub profile: DeviceProfile,
}

impl GpuContext {
    /// Queues a write of `bytes` (a multiple of 4 long) at `offset` of `buffer`, ordered
    /// before the next submission.
    pub fn write(&self, buffer: &super::Buffer, offset: u64, bytes: &[u8]) {
        self.queue.write_buffer(buffer, offset, bytes);
    }

    /// Blocks until `submission` (and all work before it) is done, running the map
    /// callbacks that become ready.
    pub fn wait_for(&self, submission: &super::graph::Submission, what: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission.0.clone()),
                timeout: None,
            })
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("{what}: {e}")))
    }
}

const NO_ADAPTER_HELP: &str = "no GPU adapter found. On headless Linux install a \
    software Vulkan driver: `apt-get install mesa-vulkan-drivers` (lavapipe)";

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl DeviceProfile {
    fn from_granted(
        info: &wgpu::AdapterInfo,
        [f16, subgroups, timestamps, f32_activations, buffer_weights]: [bool; 5],
        limits: &wgpu::Limits,
    ) -> DeviceProfile {
        let cpu_device = info.device_type == wgpu::DeviceType::Cpu;
        let memory = match info.device_type {
            wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::Cpu => DeviceMemory::Shared,
            wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::VirtualGpu
            | wgpu::DeviceType::Other => DeviceMemory::Dedicated,
        };
        let profile = DeviceProfile {
            cpu_device,
            memory,
            q8_matvec: cpu_device && !f32_activations,
            weight_textures: cpu_device && !f32_activations && !buffer_weights,
            row_groups: cpu_device && !f32_activations && !buffer_weights,
            matmul_shuffle: cpu_device && subgroups && info.subgroup_min_size >= 8,
            adapter_name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            f16,
            subgroups,
            timestamps,

            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_texture_dim: limits.max_texture_dimension_2d,
            max_uniform_binding: u64::from(limits.max_uniform_buffer_binding_size),
            max_buffer_size: limits.max_buffer_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
        };
        log::info!(
            "GPU: {} ({}, {}), f16 KV: {}, subgroups: {} (of {}+ lanes; shuffled matmul \
             activations: {}), max binding {} MiB",
            profile.adapter_name,
            profile.backend,
            profile.device_type,
            profile.f16,
            profile.subgroups,
            info.subgroup_min_size,
            profile.matmul_shuffle,
            profile.max_storage_binding >> 20
        );
        profile
    }
}

impl GpuContext {
    /// Runs on a device the host already owns (an app that renders with wgpu shares its
    /// GPU with us). We use what the device was created with: f16 KV if it has
    /// SHADER_F16, subgroup kernels if it has SUBGROUP, and its limits, which must be at
    /// least wgpu's downlevel defaults.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        opts: &DeviceOptions,
    ) -> Result<GpuContext> {
        let features = device.features();
        let limits = device.limits();
        let mut short = Vec::new();
        wgpu::Limits::downlevel_defaults().check_limits_with_fail_fn(
            &limits,
            false,
            |name, want, got| short.push(format!("{name} (need {want}, has {got})")),
        );
        if !short.is_empty() {
            return Err(Error::Gpu(format!(
                "the host's device lacks {}",
                short.join(", ")
            )));
        }
        let f16 = !opts.no_f16 && features.contains(wgpu::Features::SHADER_F16);
        let subgroups = !opts.downlevel && features.contains(wgpu::Features::SUBGROUP);
        let timestamps = features.contains(wgpu::Features::TIMESTAMP_QUERY);
        // The adapter's type decides the CPU-device kernels, as for our own device.
        let profile = DeviceProfile::from_granted(
            &device.adapter_info(),
            [
                f16,
                subgroups,
                timestamps,
                opts.f32_activations,
                opts.buffer_weights,
            ],
            &limits,
        );
        Ok(GpuContext {
            device,
            queue,
            profile,
        })
    }

    /// Picks an adapter (discrete > integrated > virtual > CPU, or by name) and opens a
    /// device with only the features and limits the runtime uses.
    pub fn new(opts: &DeviceOptions) -> Result<GpuContext> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        // Vulkan, Metal, DX12 (and WebGPU): the backends with the compute model our
        // kernels are written and tested for. wgpu's GL backend is left out.
        let backends = wgpu::Backends::PRIMARY;
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
        if adapters.is_empty() {
            return Err(Error::Gpu(NO_ADAPTER_HELP.into()));
        }
        let adapter = match &opts.adapter {
            Some(want) => {
                let want_lc = want.to_lowercase();
                let pos = adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&want_lc));
                match pos {
                    Some(i) => adapters.swap_remove(i),
                    None => {
                        let names: Vec<String> =
                            adapters.iter().map(|a| a.get_info().name).collect();
                        return Err(Error::Gpu(format!(
                            "no adapter named like '{want}'; available: {}",
                            names.join(", ")
                        )));
                    }
                }
            }
            None => {
                adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
                adapters.swap_remove(0)
            }
        };
        let info = adapter.get_info();
        // unpack2x16float reads every f16 scale; core WebGPU has it, GL ES 2-class
        // devices do not.
        let downlevel = adapter.get_downlevel_capabilities();
        if !downlevel
            .flags
            .contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32)
        {
            return Err(Error::Gpu(format!(
                "adapter '{}' cannot unpack f16 values in shaders (SHADER_F16_IN_F32)",
                info.name
            )));
        }
        let f16 = !opts.no_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
        // Subgroups are not part of the downlevel profile: that path keeps the
        // workgroup-memory reductions, so both variants stay tested.
        let subgroups = !opts.downlevel && adapter.features().contains(wgpu::Features::SUBGROUP);
        let mut features = wgpu::Features::empty();
        if f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        if subgroups {
            features |= wgpu::Features::SUBGROUP;
        }
        // Timestamps cost nothing until a profile is asked for.
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }

        let have = adapter.limits();
        let limits = if opts.downlevel {
            wgpu::Limits::downlevel_defaults()
        } else {
            // WebGPU defaults, plus the adapter's larger buffers so big matrices need
            // fewer splits. Nothing else above the defaults is assumed.
            wgpu::Limits {
                max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
                max_buffer_size: have.max_buffer_size,
                ..wgpu::Limits::default()
            }
        };
        let mut short = Vec::new();
        limits.check_limits_with_fail_fn(&have, false, |name, want, got| {
            short.push(format!("{name} (need {want}, has {got})"))
        });
        if !short.is_empty() {
            let lacks = short.join(", ");
            return Err(Error::Gpu(format!("adapter '{}' lacks {lacks}", info.name)));
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("edgeseek"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("adapter '{}': {e}", info.name)))?;
        let profile = DeviceProfile::from_granted(
            &info,
            [
                f16,
                subgroups,
                timestamps,
                opts.f32_activations,
                opts.buffer_weights,
            ],
            &limits,
        );
        Ok(GpuContext {
            device,
            queue,
            profile,
        })
    }
}
