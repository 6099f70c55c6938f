//! Long runs on the real model (SmolLM2-135M-Instruct): a hundred sessions in one
//! process hold no more memory at the end than after the first few, and a generation
//! that fills a 4,096-token context, once reset, runs again to the same end with the
//! same tokens.

mod common;

use std::sync::Mutex;
use std::time::Instant;

use edgeseek::wgpu;
use edgeseek::{
    Event, GenerateOptions, LoadOptions, Message, Model, Prompt, SamplerOptions, StopReason,
    Summary,
};

const MIB: f64 = 1024.0 * 1024.0;

/// The tests measure the process's memory: they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A device of our own, so that the test reads what wgpu holds on it rather than what
/// edgeseek thinks it allocated. The instance stays with the test for the same reason.
fn host_device() -> (wgpu::Instance, wgpu::Device, wgpu::Queue) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("no GPU adapter: apt-get install mesa-vulkan-drivers");
    // What edgeseek asks for on its own device, so that the usual kernels run (f16 KV
    // cache, subgroup reductions) rather than host_device.rs's bare-device variants.
    let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
    let have = adapter.limits();
    let desc = wgpu::DeviceDescriptor {
        required_features: adapter.features() & wanted,
        required_limits: wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..Default::default()
        },
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    (instance, device, queue)
}

/// What wgpu holds on the device, from its memory allocator and its object registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GpuHeld {
    /// Live memory allocations (buffers) and their bytes.
    allocations: usize,
    allocated_bytes: u64,
    /// Live wgpu objects that could pile up per session.
    buffers: usize,
    bind_groups: usize,
    command_buffers: usize,
}

fn gpu_held(instance: &wgpu::Instance, device: &wgpu::Device) -> GpuHeld {
    // Dropped resources are freed once the device has seen their last use finish.
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("device poll");
    let alloc = device
        .generate_allocator_report()
        .expect("the Vulkan backend reports its allocations");
    let hub = instance
        .generate_report()
        .expect("wgpu-core instance reports its registry")
        .hub;
    GpuHeld {
        allocations: alloc.allocations.len(),
        allocated_bytes: alloc.total_allocated_bytes,
        buffers: hub.buffers.num_kept_from_user,
        bind_groups: hub.bind_groups.num_kept_from_user,
        command_buffers: hub.command_buffers.num_kept_from_user,
    }
}

fn anon_rss() -> u64 {
    edgeseek::rss().expect("/proc/self/status").anon
}

/// A sampled token and the highest logits it was chosen from (as many as asked for).
type Sampled = (u32, Vec<(u32, f32)>);

/// Every sampled token and the summary of one generation.
fn generate(
    s: &mut edgeseek::Session<'_>,
    prompt: Prompt<'_>,
    opts: GenerateOptions,
) -> (Vec<Sampled>, Summary) {
    let mut tokens = Vec::new();
    for ev in s.generate(prompt, opts).unwrap() {
        match ev.unwrap() {
            Event::Token { id, top } => tokens.push((id, top)),
            Event::Done(sum) => return (tokens, sum),
            _ => {}
        }
    }
    panic!("the generation ended without Done");
}

/// Sessions before the baseline: the first ones compile pipelines and grow the
/// allocator's pools; after them nothing should grow.
const WARM_UP: usize = 5;
const SESSIONS: usize = 100;
/// How much the anonymous RSS may grow from the warm-up to the last session. Measured
/// growth here (2-core machine, lavapipe; seven runs) was 0.00 MiB, page-exact: sessions
/// allocate nothing lasting. The bound leaves room for other drivers' and allocators'
/// caches, yet a leak of this model's KV cache (5.6 MiB at the 256-token context used
/// here) or scratch (1.9 MiB) per session would be 530 or 176 MiB over 95 sessions, and
/// anything above 86 KiB per session fails.
const RSS_GROWTH_BOUND_MIB: f64 = 8.0;

#[test]
fn a_hundred_sessions_leave_memory_flat() {
    let _alone = one_at_a_time();
    let (instance, device, queue) = host_device();
    let opts = LoadOptions {
        n_ctx: Some(256),
        ..Default::default()
    };
    let mut model = Model::load_on_device(common::smollm2(), &opts, device.clone(), queue)
        .unwrap_or_else(|e| panic!("{e}"));
    let loaded = gpu_held(&instance, &device);
    // The counters must count: the weights alone are ~92 MiB in a few hundred buffers.
    assert!(
        loaded.allocations > 100 && loaded.allocated_bytes > 90 << 20 && loaded.buffers > 100,
        "wgpu's reports do not see the model: {loaded:?}"
    );

    let questions = [
        "What is the capital of France?",
        "Name three colours of the rainbow.",
        "Write a haiku about autumn leaves falling in a quiet park.",
        "How many legs does a spider have?",
        "Explain in one sentence why the sky is blue during the day.",
        "Say hello.",
        "What is two plus two?",
    ];
    let started = Instant::now();
    let mut baseline = None;
    let mut trace = Vec::new();
    let mut prompt_tokens = 0;
    let mut generated = 0;
    for i in 0..SESSIONS {
        let q = questions[i % questions.len()];
        // A short system prompt of our own: SmolLM2's default one would double the
        // prompt, and prefill is most of a session's time.
        let chat = [
            Message::system("Answer briefly."),
            Message::user(format!("{q} (Question {i}.)")),
        ];
        let opts = GenerateOptions {
            max_tokens: 1 + i % 4,
            sampler: SamplerOptions {
                seed: i as u64,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut session = model.session().unwrap();
        let (tokens, sum) = generate(&mut session, Prompt::Chat(&chat), opts);
        drop(session);
        assert!(
            matches!(
                sum.stop,
                StopReason::MaxTokens | StopReason::EndOfGeneration
            ) && !tokens.is_empty()
                && tokens.len() == sum.generated_tokens
                && sum.reused_tokens == 0,
            "session {i}: {sum:?}"
        );
        prompt_tokens += sum.prompt_tokens;
        generated += sum.generated_tokens;
        if i + 1 == WARM_UP {
            baseline = Some((anon_rss(), gpu_held(&instance, &device)));
        }
        if (i + 1) % 10 == 0 {
            trace.push(format!("{:.1}", anon_rss() as f64 / MIB));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_warm, gpu_warm) = baseline.unwrap();
    let (rss_end, gpu_end) = (anon_rss(), gpu_held(&instance, &device));
    let growth = (rss_end as f64 - rss_warm as f64) / MIB;
    eprintln!(
        "model GPU memory (its own bookkeeping): {:?}",
        model.memory()
    );
    eprintln!(
        "{SESSIONS} sessions ({prompt_tokens} prompt, {generated} generated tokens) in {elapsed:.1} s; anonymous RSS {:.1} MiB after {WARM_UP}, \
         {:.1} MiB at the end ({growth:+.2} MiB; every 10: {}); GPU after load {loaded:?}, \
         after warm-up {gpu_warm:?}, at the end {gpu_end:?}",
        rss_warm as f64 / MIB,
        rss_end as f64 / MIB,
        trace.join(" ")
    );
    assert_eq!(
        gpu_end,
        gpu_warm,
        "GPU allocations and objects changed over {} sessions",
        SESSIONS - WARM_UP
    );
    assert!(
        growth <= RSS_GROWTH_BOUND_MIB,
        "anonymous RSS grew {growth:.1} MiB over {} sessions (bound {RSS_GROWTH_BOUND_MIB} MiB)",
        SESSIONS - WARM_UP
    );
    // Dropping the model gives the host's device back all it took (wgpu keeps a few
    // buffers of its own, 0.5 MiB on Vulkan, outside the registry).
    drop(model);
    let dropped = gpu_held(&instance, &device);
    assert!(
        dropped.buffers == 0 && dropped.bind_groups == 0 && dropped.allocated_bytes < 1 << 20,
        "the dropped model left {dropped:?} on the device"
    );
}

const N_CTX: u32 = 4096;
/// Tokens the filling generation samples. Prefill is the cheap way to fill a context
/// (~10x faster per token than decode here); decoding the last tokens exercises
/// generation at the end of the cache and the ContextFull stop.
const DECODED: usize = 16;

/// Plain prose, repeated to fill the context: the model continues a repetition with
/// near certainty, so greedy decoding does not end the text early.
const TEXT: &str = "The river leaves the mountains as a cold, fast stream and slows as \
    the valley widens. Farmers along its banks grow wheat, barley and grapes, and every \
    spring the water rises with the melting snow. Small towns grew where the old roads \
    crossed it, each with a stone bridge, a market square and a church whose bells can \
    be heard across the fields. Today boats carry tourists where they once carried salt, \
    timber and wine, and the towpaths have become cycle routes that follow the water \
    from its source to the sea.\n\n";

#[test]
fn a_full_context_twice_with_a_reset_between() {
    let _alone = one_at_a_time();
    let mut model = common::load(
        &common::smollm2(),
        &LoadOptions {
            n_ctx: Some(N_CTX),
            ..Default::default()
        },
    );
    let tok = model.tokenizer().expect("SmolLM2 has a tokenizer");
    let paragraph = tok.encode(TEXT, false, false).unwrap();
    // The prompt leaves room for DECODED - 1 evaluated tokens; the last sampled token
    // has no room left in the cache and ends the generation.
    let prompt_len = N_CTX as usize + 1 - DECODED;
    let prompt: Vec<u32> = paragraph.iter().cycle().take(prompt_len).copied().collect();

    let mut runs = Vec::new();
    for run in 0..2 {
        let started = Instant::now();
        // A new session resets the model: nothing of the first run may be left.
        let mut session = model.session().unwrap();
        let opts = GenerateOptions {
            max_tokens: usize::MAX,
            sampler: SamplerOptions::greedy(),
            // The logits behind each token, to compare the runs bitwise.
            top_logprobs: 4,
            ..Default::default()
        };
        let (tokens, sum) = generate(&mut session, Prompt::Ids(&prompt), opts);
        drop(session);
        eprintln!(
            "run {run}: {} prompt + {} generated tokens in {:.1} s (prefill {:.1} tok/s, \
             decode {:.2} tok/s), stop {:?}, anonymous RSS {:.1} MiB",
            sum.prompt_tokens,
            sum.generated_tokens,
            started.elapsed().as_secs_f64(),
            sum.prefill_tok_s,
            sum.decode_tok_s,
            sum.stop,
            anon_rss() as f64 / MIB
        );
        assert_eq!(sum.stop, StopReason::ContextFull, "run {run}: {sum:?}");
        assert_eq!(
            (sum.prompt_tokens, sum.generated_tokens, tokens.len()),
            (prompt_len, DECODED, DECODED),
            "run {run}"
        );
        assert_eq!(model.position(), N_CTX, "run {run}: the cache is full");
        runs.push(tokens);
    }
    // A reset must leave nothing behind: the same tokens from bitwise the same logits.
    for (i, ((id0, top0), (id1, top1))) in runs[0].iter().zip(&runs[1]).enumerate() {
        let same = top0.len() == top1.len()
            && top0
                .iter()
                .zip(top1)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
        assert!(
            id0 == id1 && same,
            "token {i} after the reset: {id1} {top1:?}, first run {id0} {top0:?}"
        );
    }
}
