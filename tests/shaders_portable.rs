//! Portability beyond Vulkan without the hardware: every WGSL variant the runtime can
//! select is parsed, validated and translated by naga (the compiler inside wgpu) to
//! SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12).

use edgeseek::gpu::pipelines::{KvType, PipelineKey};
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

#[test]
fn every_kernel_variant_translates_to_spirv_msl_and_hlsl() {
    let keys = PipelineKey::all();
    // 7 format kernels x 11 formats + the integer-dot matvec and matmul x 6 formats +
    // 4 cache kernels x 2 KV types + 5 others.
    assert_eq!(keys.len(), 7 * 11 + 2 * 6 + 4 * 2 + 5);
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
        // The subgroup matvec is selected only where the device has SUBGROUP.
        if key.kernel.uses_subgroups() {
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
