//! Lookup tables the weight readers index: the IQ4 levels (a private array in the WGSL)
//! and the i-quant grids (a uniform buffer in bind group [`IQ_GRID_GROUP`]), declared
//! to the shaders and uploaded from their one source in file/ (quant.rs, iq_grids.rs).

use crate::file::quant::{IqGrid, WeightFormat, IQ1S_DELTA};
use crate::gpu::kernels::Binding;
use crate::gpu::pipelines::bind_group_layout;

/// A format's lookup table or grid as WGSL, from its one source in file/ (quant.rs,
/// iq_grids.rs), followed by the helpers its readers share.
///
/// The 16 IQ4 levels are a private array, which shaders may index with a runtime value
/// (a `const` array is materialised per use). The i-quant grids (256 to 2048 entries) are
/// a uniform buffer in bind group 1 instead ([`IQ_GRID_GROUP`], [`grid_wgsl`]). Measured on
/// lavapipe: as a private array, the 256-entry IQ2_XXS grid made one matvec pipeline take
/// 4.4 s to compile (13 ms for Q4_K) and the 2048-entry IQ1_S one had not compiled after
/// 3 minutes; as a buffer, 60–360 ms. Uniform rather than storage: a matvec already
/// binds 4 storage buffers, the most wgpu's downlevel limits allow, while 12 uniform
/// buffers of up to 16 KiB are allowed there — and the largest grid (IQ1_S, 2048 entries
/// of 8 bytes) is exactly 16 KiB. Not measured on real GPUs: there, lanes index the grid
/// with different values, which some drivers serialize for uniform buffers; workgroup
/// memory filled once per workgroup is the alternative to measure (issue #16).
pub(super) fn push_lookup_table(src: &mut String, format: WeightFormat) {
    if let Some((name, levels)) = format.lookup_table() {
        let values: Vec<String> = levels.iter().map(|v| format!("{v}.0")).collect();
        src.push_str(&private_array(name, "f32", &values));
        // The same levels as int8 bytes, four to a word, for the integer-dot readers,
        // which pick them with selects: no memory lookup per weight.
        for (i, four) in levels.chunks(4).enumerate() {
            let word = four
                .iter()
                .enumerate()
                .fold(0u32, |w, (k, &v)| w | u32::from(v as u8) << (8 * k));
            src.push_str(&format!("const {name}_W{i}: u32 = {word:#010x}u;\n"));
        }
        src.push_str(IQ4_LEVELS);
    }
    if let Some(grid) = format.grid() {
        src.push_str(&grid_wgsl(grid));
        src.push_str(&format!("const IQ1S_DELTA: f32 = {:?};\n", IQ1S_DELTA));
        src.push_str(IQ_GRIDS);
    }
}

/// The declaration of a grid and its accessor: `grid8(i)`, entry i of an 8-value grid as
/// vec2<u32>, or `grid4(i)`, entry i of a 4-value grid as u32. A uniform array's
/// elements are 16 bytes apart, so each vec4<u32> holds 2 or 4 entries.
fn grid_wgsl(grid: IqGrid) -> String {
    let (name, n_vec4, accessor) = match grid {
        IqGrid::Pairs(name, pairs) => (
            name,
            pairs.len() / 2,
            format!(
                "fn grid8(i: u32) -> vec2<u32> {{\n    let v = {name}[i >> 1u];\n    \
                 return select(v.xy, v.zw, (i & 1u) == 1u);\n}}\n"
            ),
        ),
        IqGrid::Words(name, words) => (
            name,
            words.len() / 4,
            format!("fn grid4(i: u32) -> u32 {{\n    return {name}[i >> 2u][i & 3u];\n}}\n"),
        ),
    };
    format!(
        "@group({IQ_GRID_GROUP}) @binding(0) var<uniform> {name}: array<vec4<u32>, {n_vec4}>;\n{accessor}"
    )
}

/// The bind group that holds an i-quant grid, after the kernel's own (group 0).
pub const IQ_GRID_GROUP: u32 = 1;

/// A grid's bytes as the shaders read them: entries little-endian, a u64 entry as the
/// vec2<u32> (low word, high word).
fn grid_bytes(grid: IqGrid) -> Vec<u8> {
    match grid {
        IqGrid::Words(_, words) => words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        IqGrid::Pairs(_, pairs) => pairs.iter().flat_map(|p| p.to_le_bytes()).collect(),
    }
}

pub(super) fn grid_name(grid: IqGrid) -> &'static str {
    match grid {
        IqGrid::Words(name, _) | IqGrid::Pairs(name, _) => name,
    }
}

fn private_array(name: &str, ty: &str, values: &[String]) -> String {
    format!(
        "var<private> {name}: array<{ty}, {n}> = array<{ty}, {n}>({});\n",
        values.join(", "),
        n = values.len()
    )
}

/// The IQ4 levels as values and as packed bytes.
const IQ4_LEVELS: &str = include_str!("../../shaders/iq4_levels.wgsl");
/// Sign and byte helpers of the grid i-quants.
const IQ_GRIDS: &str = include_str!("../../shaders/iq_grids.wgsl");

/// A grid's uniform buffer and the bind group (with its layout) that binds it.
pub(super) fn upload_grid(
    device: &wgpu::Device,
    grid: IqGrid,
) -> (wgpu::BindGroupLayout, wgpu::BindGroup) {
    use wgpu::util::DeviceExt;
    let name = grid_name(grid);
    let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(name),
        contents: &grid_bytes(grid),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let layout = bind_group_layout(device, &[Binding::Uniform]);
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(name),
        layout: &layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: buffer.as_entire_binding(),
        }],
    });
    (layout, group)
}
