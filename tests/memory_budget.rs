//! One memory budget: every dense and MoE fixture under a "small device" profile
//! (downlevel limits, no f16) and a budget of 40% of the model file gives bitwise the
//! logits of the fully resident run on the same device, after really streaming dense
//! weights; too small a budget is refused with the minimum.

mod common;

use common::{assert_bitwise, fixture, golden, greedy_logits, load};
use edgeseek::{DeviceOptions, LoadOptions, Model};

const FIXTURES: [&str; 9] = [
    "llama-Q4_K_M",
    "llama-F16",
    "qwen2-Q8_0",
    "qwen2-Q4_0",
    "qwen3-Q6_K",
    "qwen3-F32",
    "deepseek2-lite-Q4_K_M",
    "deepseek2-v3-F32",
    "qwen3moe-Q8_0",
];

fn small_device() -> LoadOptions {
    LoadOptions {
        device: DeviceOptions {
            no_f16: true,
            downlevel: true,
            ..Default::default()
        },
        // A context and batch that fit the small budgets of the tiny fixtures.
        n_ctx: Some(64),
        max_batch: 8,
        ..Default::default()
    }
}

#[test]
fn forty_percent_budget_is_bitwise_the_resident_run_on_a_small_device() {
    for name in FIXTURES {
        let path = fixture(&format!("{name}.gguf"));
        let g = golden(&format!("{name}.json"));
        let prompt = common::ids(&g["prompts"][2]["ids"]);
        let size = std::fs::metadata(&path).unwrap().len();

        let mut resident = load(&path, &small_device());
        let want = greedy_logits(&mut resident, &prompt, 12);
        assert_eq!(resident.bytes_streamed(), 0, "{name}");

        let budget = size * 4 / 10;
        let opts = LoadOptions {
            max_resident_bytes: Some(budget),
            ..small_device()
        };
        let mut small = load(&path, &opts);
        let plan = small.plan().clone();
        let got = greedy_logits(&mut small, &prompt, 12);
        // Dense layers streamed, or (MoE models whose dense part fits) experts.
        let experts_read = small.expert_stats().map_or(0, |e| e.bytes_read);
        let streamed = small.bytes_streamed() + experts_read;
        assert!(
            streamed > 0 && (!plan.streamed_layers.is_empty() || experts_read > 0),
            "{name}: nothing streamed under {budget} bytes: {plan:?}"
        );
        let mem = small.memory();
        let held = mem.weights + mem.expert_cache + mem.kv_cache + mem.scratch + mem.stream_ring;
        assert!(
            held <= budget,
            "{name}: {held} GPU bytes over the budget {budget}: {mem:?}"
        );
        assert_bitwise(&want, &got, &format!("{name}: resident vs 40% budget"));
        eprintln!(
            "{name}: {} of {} bytes budget, {} layers streamed, {} dense + {} expert bytes streamed over 13 steps; {}",
            held,
            budget,
            plan.streamed_layers.len(),
            small.bytes_streamed(),
            experts_read,
            plan.describe()
        );
    }
}

#[test]
fn too_small_a_budget_is_refused_with_the_minimum() {
    let path = fixture("qwen2-Q4_K_M.gguf");
    let opts = LoadOptions {
        max_resident_bytes: Some(100_000),
        ..small_device()
    };
    let msg = Model::load(&path, &opts)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        msg.contains("qwen2-Q4_K_M.gguf")
            && msg.contains("context of 64 tokens")
            && msg.contains("limit is 100000"),
        "{msg}"
    );
}
