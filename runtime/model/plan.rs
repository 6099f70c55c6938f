//! Planning GPU memory, as pure functions of the file's shapes and the options, decided
//! once at load: what is resident and what streams under one budget
//! (`LoadOptions::max_resident_bytes`), and how many expert slots the MoE cache gets.
//! The GPU side of streaming is [`crate::gpu::stream`].
//!
//! The budget is divided in this order: KV cache, scratch, small tensors, the expert
//! cache's minimum; then — when the dense weights do not all fit — a stream ring (two
//! slots plus two staging buffers), then dense layers in order and the output matrix
//! while they fit; what is left goes to the expert cache.

use crate::error::{Error, Result};
use crate::file::gguf::{GgufFile, TensorInfo};
use crate::gpu::buffers::{self, MatrixUse, Placement, RowLayout, WeightMatrix};
use crate::gpu::context::{DeviceMemory, DeviceProfile};
use crate::model::config::Config;
use crate::model::names;

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
    t.dims.len() >= 2 && !names::is_expert_tensor(&t.name) && t.name != names::TOKEN_EMBD
}

/// GPU bytes of a matrix uploaded in parts at the binding limit (rows, read padding),
/// in buffers or textures as the loader places it on this device.
pub fn matrix_bytes(t: &TensorInfo, limit: u64, profile: &DeviceProfile) -> u64 {
    let (rows, cols) = rows_cols(t);
    let use_ = match names::is_per_head_matrix(&t.name) {
        true => MatrixUse::Heads,
        false => MatrixUse::Mat,
    };
    let placement = Placement::of(profile, t.format, use_);
    let layout = RowLayout::of(profile, t.format, use_);
    WeightMatrix::gpu_bytes_of(
        t.format,
        [rows as u32, cols as u32],
        limit,
        placement,
        layout,
    )
    .unwrap_or(t.size)
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
        profile: &DeviceProfile,
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
            let bytes = matrix_bytes(t, limit, profile);
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
            unit: "bytes",
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

/// Where the routed experts go (MoE models).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ExpertBudget {
    /// Every expert resident when they fit in [`AUTO_EXPERT_SHARE`] of the device
    /// memory (see [`device_memory`]), else stream within that share.
    #[default]
    Auto,
    /// The smallest cache the model allows: one token's experts of one layer.
    Min,
    /// At most this many bytes of expert slots.
    Bytes(u64),
}

/// Share of device memory the automatic expert budget may take.
pub const AUTO_EXPERT_SHARE: f64 = 0.5;
/// What a device that shares the host's memory is assumed to have when the host's
/// total is unknown (no /proc/meminfo).
const ASSUMED_SHARED: u64 = 8 << 30;
/// What a discrete GPU is assumed to have: wgpu reports no memory size, and 4 GiB is
/// the smallest discrete GPU with Vulkan compute one is likely to meet.
const ASSUMED_DEDICATED: u64 = 4 << 30;

/// The memory the automatic expert budget takes its share of, and why that much.
/// Integrated GPUs and CPU devices (lavapipe) use the host's RAM, so its total is their
/// memory; a discrete GPU's memory is not reported by wgpu, so a conservative size is
/// assumed (a larger `--expert-cache-mb` uses more).
pub fn device_memory(memory: DeviceMemory, host_total: Option<u64>) -> (u64, String) {
    let mib = |b: u64| b >> 20;
    match (memory, host_total) {
        (DeviceMemory::Shared, Some(total)) => (
            total,
            format!(
                "the device shares the host's memory ({} MiB)",
                mib(total)
            ),
        ),
        (DeviceMemory::Shared, None) => (
            ASSUMED_SHARED,
            format!(
                "the device shares the host's memory, whose size is unknown: assuming {} MiB",
                mib(ASSUMED_SHARED)
            ),
        ),
        (DeviceMemory::Dedicated, _) => (
            ASSUMED_DEDICATED,
            format!(
                "a discrete GPU, whose memory wgpu does not report: assuming {} MiB (--expert-cache-mb sets more)",
                mib(ASSUMED_DEDICATED)
            ),
        ),
    }
}

/// Expert slots for a budget: at least one token's experts of one layer (`n_used`),
/// at most every expert in the model (`all`). `memory` is [`device_memory`]'s answer,
/// for [`ExpertBudget::Auto`], whose share is also spent on `dense_bytes`.
pub fn expert_slots(
    path: &std::path::Path,
    [slot_bytes, dense_bytes]: [u64; 2],
    [n_used, all]: [u64; 2],
    budget: ExpertBudget,
    memory: &(u64, String),
) -> Result<u32> {
    let min_bytes = n_used * slot_bytes;
    let slots = match budget {
        ExpertBudget::Min => n_used,
        ExpertBudget::Bytes(b) => {
            if b < min_bytes {
                return Err(Error::Limit {
                    what: format!(
                        "{}: the expert cache (one token's {n_used} experts of one layer, {:.1} MiB)",
                        path.display(),
                        min_bytes as f64 / (1 << 20) as f64
                    ),
                    needed: min_bytes,
                    limit: b,
                    unit: "bytes",
                });
            }
            b / slot_bytes
        }
        ExpertBudget::Auto => {
            let (total, why) = memory;
            let share = (*total as f64 * AUTO_EXPERT_SHARE) as u64;
            let room = share.saturating_sub(dense_bytes).max(min_bytes);
            let slots = room / slot_bytes;
            log::info!(
                "expert budget: {} of {all} experts ({} MiB): {:.0}% of {} MiB device memory, less {} MiB of dense weights; {why}",
                slots.min(all),
                (slots.min(all) * slot_bytes) >> 20,
                AUTO_EXPERT_SHARE * 100.0,
                total >> 20,
                dense_bytes >> 20
            );
            slots
        }
    };
    Ok(slots.min(all).max(n_used).min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn input(budget: Option<u64>) -> PlanInput {
        PlanInput {
            budget,
            kv_cache: 10 * MIB,
            scratch: 2 * MIB,
            layers: vec![40 * MIB; 4],
            output: 30 * MIB,
            always_resident: MIB,
            largest_part: 8 * MIB,
            largest_row: 4096,
            expert_min: 0,
            expert_all: 0,
            n_ctx: 512,
        }
    }

    fn plan_of(p: &PlanInput) -> Result<MemoryPlan> {
        plan(std::path::Path::new("m.gguf"), p)
    }

    /// The full 61-layer DeepSeek-R1 in the UD-IQ1_S type mix, from the per-layer bytes
    /// of the R1 slice's tensor table (scripts/make_r1_slice.py: true R1 shapes): 3 dense
    /// layers of 336.5 MiB streamable, 58 MoE layers of 118.6 MiB (attention and shared
    /// expert) with 20.1 MiB always resident (router, attn_k_b, attn_v_b), the dense
    /// layers' 13.1 MiB, the 725 MiB output matrix, experts of 9.08 MiB (IQ1_S gate/up,
    /// IQ2_XXS down), 8 used; MLA's latent KV cache (576 f16 per token and layer) for
    /// 4096 tokens; scratch as measured on the slice (63.1 MiB).
    fn full_r1(budget_mib: u64) -> PlanInput {
        let expert = 9_519_104;
        PlanInput {
            budget: Some(budget_mib * MIB),
            kv_cache: 4096 * 61 * 576 * 2,
            scratch: 64 * MIB,
            layers: [vec![352_825_344; 3], vec![124_366_848; 58]].concat(),
            output: 760_166_400,
            always_resident: 3 * 13_697_024 + 58 * 21_038_080 + 28_672,
            // Parts at the binding limit (128 MiB); the widest row is the dense ffn_down's,
            // 18432 Q6_K values (15,120 B) plus the read padding.
            largest_part: 128 * MIB,
            largest_row: 15_136,
            expert_min: 8 * expert,
            expert_all: 58 * 256 * expert,
            n_ctx: 4096,
        }
    }

    /// docs/r1.md's plans on paper: what Model::plan() would print for the full R1 on a
    /// laptop GPU with 8 GiB (a 7 GiB budget) and on a Raspberry Pi 5 with 8 GiB shared
    /// (a 5 GiB budget, the rest for the OS and the page cache).
    #[test]
    fn full_r1_plans_for_a_laptop_and_a_pi_5() {
        let laptop = plan_of(&full_r1(7 * 1024)).unwrap();
        println!("laptop: {}", laptop.describe());
        // Every dense layer up to 39 resident, the last 21 and the output streamed,
        // what is left is an expert cache of 18 experts (the minimum is 8).
        assert_eq!(laptop.streamed_layers, (40..61).collect::<Vec<u32>>());
        assert!(laptop.output_streamed);
        assert_eq!(laptop.expert_cache.unwrap() / 9_519_104, 18);
        let pi = plan_of(&full_r1(5 * 1024)).unwrap();
        println!("pi 5: {}", pi.describe());
        assert_eq!(pi.streamed_layers, (23..61).collect::<Vec<u32>>());
        assert_eq!(pi.expert_cache.unwrap() / 9_519_104, 14);
        // Everything the budget holds adds up to it.
        for p in [&laptop, &pi] {
            let total = p.kv_cache
                + p.scratch
                + p.always_resident
                + p.dense_resident
                + p.stream_buffers
                + p.expert_cache.unwrap();
            assert!(total <= p.budget.unwrap(), "{total}");
        }
    }

    #[test]
    fn without_a_budget_everything_is_resident() {
        let p = plan_of(&input(None)).unwrap();
        assert_eq!(p.dense_resident, 190 * MIB);
        assert_eq!((p.dense_streamed, p.stream_buffers), (0, 0));
        assert!(p.streamed_layers.is_empty() && !p.output_streamed);
    }

    #[test]
    fn a_budget_that_holds_everything_streams_nothing() {
        let p = plan_of(&input(Some(203 * MIB))).unwrap();
        assert_eq!(
            (p.dense_resident, p.dense_streamed, p.stream_buffers),
            (190 * MIB, 0, 0)
        );
    }

    #[test]
    fn layers_that_do_not_fit_stream_in_order_and_the_ring_is_planned_first() {
        // 13 MiB fixed; 100 MiB leaves 87: the ring first (two slots and two staging
        // buffers of 87/16 MiB), then one 40 MiB layer fits and the rest stream.
        let p = plan_of(&input(Some(100 * MIB))).unwrap();
        assert!(p.stream_buffers > 0 && p.slot_bytes <= 8 * MIB && p.slot_bytes >= 4096);
        let room = 100 * MIB - 13 * MIB - p.stream_buffers;
        assert_eq!(p.dense_resident, room / (40 * MIB) * 40 * MIB);
        let resident_layers = (room / (40 * MIB)) as usize;
        let streamed: Vec<u32> = (resident_layers as u32..4).collect();
        assert_eq!(
            p.streamed_layers, streamed,
            "the first layers stay resident"
        );
        assert!(p.output_streamed);
        assert_eq!(p.dense_resident + p.dense_streamed, 190 * MIB);
    }

    #[test]
    fn a_budget_below_the_fixed_part_and_a_ring_is_refused_with_the_minimum() {
        // 13 MiB is exactly KV + scratch + small tensors: no room for the ring.
        let e = plan_of(&input(Some(13 * MIB))).unwrap_err();
        let Error::Limit { needed, limit, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(limit, 13 * MIB);
        assert_eq!(
            needed,
            13 * MIB + 4 * 4096,
            "the minimum includes a ring of one row"
        );
    }

    #[test]
    fn the_expert_cache_gets_what_is_left_up_to_all_experts() {
        let mut i = input(Some(1000 * MIB));
        i.expert_min = 6 * MIB;
        i.expert_all = 500 * MIB;
        let p = plan_of(&i).unwrap();
        assert_eq!(p.expert_cache, Some(500 * MIB));
        i.budget = Some(300 * MIB);
        let p = plan_of(&i).unwrap();
        assert_eq!(p.expert_cache, Some(300 * MIB - 13 * MIB - 190 * MIB));
    }

    #[test]
    fn expert_slots_follow_the_budget_within_one_token_and_all_experts() {
        let path = std::path::Path::new("m.gguf");
        let mem = (16 << 30, String::new());
        let slots = |b| expert_slots(path, [MIB, 0], [6, 1000], b, &mem);
        assert_eq!(slots(ExpertBudget::Min).unwrap(), 6);
        assert_eq!(slots(ExpertBudget::Bytes(100 * MIB + 5)).unwrap(), 100);
        assert_eq!(slots(ExpertBudget::Bytes(1 << 40)).unwrap(), 1000);
        assert!(matches!(
            slots(ExpertBudget::Bytes(5 * MIB)),
            Err(Error::Limit { needed, .. }) if needed == 6 * MIB
        ));
        // Auto: half of 16 GiB covers every expert.
        assert_eq!(slots(ExpertBudget::Auto).unwrap(), 1000);
        let small = (1000 * MIB, String::new());
        let auto = expert_slots(
            path,
            [MIB, 200 * MIB],
            [6, 1000],
            ExpertBudget::Auto,
            &small,
        );
        assert_eq!(
            auto.unwrap(),
            300,
            "half of 1000 MiB less 200 MiB of dense weights"
        );
    }

    #[test]
    fn the_automatic_budget_knows_which_devices_share_host_memory() {
        let (m, why) = device_memory(DeviceMemory::Shared, Some(24 << 30));
        assert_eq!(m, 24 << 30);
        assert!(why.contains("shares the host's memory"), "{why}");
        // A discrete GPU's memory is not the host's: never take MemTotal for it.
        let (m, why) = device_memory(DeviceMemory::Dedicated, Some(256 << 30));
        assert_eq!(m, ASSUMED_DEDICATED);
        assert!(why.contains("discrete GPU"), "{why}");
        assert_eq!(device_memory(DeviceMemory::Shared, None).0, ASSUMED_SHARED);
    }
}
