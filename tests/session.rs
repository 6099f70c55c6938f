//! The streaming text API on the real model (SmolLM2-135M-Instruct): text pieces,
//! stop conditions, prompt reuse, cancellation, errors.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use edgeseek::SamplerOptions;
use edgeseek::{
    DeviceOptions, Error, Event, GenerateOptions, LoadOptions, Message, Model, Prompt, StopReason,
    Summary,
};

fn model() -> Model {
    common::load(
        &common::smollm2(),
        &LoadOptions {
            n_ctx: Some(128),
            ..Default::default()
        },
    )
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampler: SamplerOptions::greedy(),
        ..Default::default()
    }
}

/// All text and the summary of one generation.
fn run(model: &mut Model, prompt: Prompt<'_>, opts: GenerateOptions) -> (String, Summary) {
    let mut s = model.session().unwrap();
    collect(&mut s, prompt, opts)
}

fn collect(
    s: &mut edgeseek::Session<'_>,
    prompt: Prompt<'_>,
    opts: GenerateOptions,
) -> (String, Summary) {
    let mut text = String::new();
    let mut summary = None;
    for ev in s.generate(prompt, opts).unwrap() {
        match ev.unwrap() {
            Event::Text(t) => text.push_str(&t),
            Event::Done(sum) => summary = Some(sum),
            Event::Token { top, .. } => assert!(top.is_empty(), "top logits only when asked"),
            other => panic!("unexpected {other:?}"),
        }
    }
    (text, summary.expect("Done is the last event"))
}

#[test]
fn greedy_text_matches_llama_cpp_and_stops_as_asked() {
    let mut m = model();
    // llama.cpp's greedy continuation (goldens): " Paris.\n\nThe ..."
    let (text, sum) = run(&mut m, Prompt::Raw("The capital of France is"), greedy(5));
    assert_eq!(text, " Paris.\n\nThe");
    assert_eq!(
        (sum.stop, sum.generated_tokens, sum.prompt_tokens),
        (StopReason::MaxTokens, 5, 5)
    );

    let opts = GenerateOptions {
        stop: vec![".\n".into()],
        ..greedy(8)
    };
    let (text, sum) = run(&mut m, Prompt::Raw("The capital of France is"), opts);
    assert_eq!(
        (text.as_str(), sum.stop),
        (" Paris", StopReason::StopString)
    );
}

#[test]
fn chat_prompt_ends_at_the_end_of_turn_token() {
    let mut m = model();
    let prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    let (text, sum) = run(&mut m, Prompt::Raw(prompt), greedy(32));
    // llama.cpp's quantized run says "The answer is: 4"; on the dequantized weights (our
    // reference) its argmax after "The answer is" is a space instead of ":" (a near-tie:
    // top-2 margin 0.03 in the goldens). Both then answer 4 and end the turn.
    assert!(
        text.starts_with("The answer is") && text.contains('4') && text.len() < 24,
        "{text:?}"
    );
    assert_eq!(sum.stop, StopReason::EndOfGeneration);
}

/// The README's question. llama.cpp (CPU, greedy, same chat prompt) answers exactly this,
/// and its smallest top-2 logit margin over the answer is 0.89, so both our activation
/// paths must give the same words. The bare "What is the capital of France?" is a
/// near-tie at the first token (0.08 on the dequantized weights) that llama.cpp's 8-bit
/// matmuls tip to "L'Étoile, la Marseilla": a bad README prompt, not a kernel bug.
#[test]
fn readme_question_gets_llama_cpps_answer_with_either_activation_path() {
    let question = [Message::user(
        "What is the capital of France? Answer in one sentence.",
    )];
    for f32_activations in [false, true] {
        let opts = LoadOptions {
            n_ctx: Some(128),
            device: DeviceOptions {
                f32_activations,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut m = common::load(&common::smollm2(), &opts);
        let (text, sum) = run(&mut m, Prompt::Chat(&question), greedy(24));
        assert_eq!(
            (text.as_str(), sum.stop),
            (
                "The capital of France is Paris.",
                StopReason::EndOfGeneration
            ),
            "f32_activations: {f32_activations}"
        );
    }
}

#[test]
fn a_longer_prompt_reuses_the_cached_prefix() {
    let mut m = model();
    let mut s = m.session().unwrap();
    let (_, first) = collect(&mut s, Prompt::Raw("The capital of France is"), greedy(2));
    assert_eq!(first.reused_tokens, 0);
    let (text, second) = collect(
        &mut s,
        Prompt::Raw("The capital of France is Paris. The capital of Italy is"),
        greedy(2),
    );
    assert!(second.reused_tokens >= 5, "{second:?}");
    // Same answer as from a fresh session.
    let (fresh, _) = run(
        &mut model(),
        Prompt::Raw("The capital of France is Paris. The capital of Italy is"),
        greedy(2),
    );
    assert_eq!(text, fresh);
}

#[test]
fn cancellation_and_seeded_sampling() {
    let mut m = model();
    let cancel = Arc::new(AtomicBool::new(true));
    let opts = GenerateOptions {
        cancel: Some(cancel),
        ..greedy(8)
    };
    let (text, sum) = run(&mut m, Prompt::Raw("Hello"), opts);
    assert_eq!(
        (text.as_str(), sum.stop, sum.generated_tokens),
        ("", StopReason::Cancelled, 0)
    );

    let seeded = |seed| GenerateOptions {
        max_tokens: 6,
        sampler: SamplerOptions {
            temperature: 1.0,
            seed,
            ..Default::default()
        },
        ..Default::default()
    };
    let a = run(&mut m, Prompt::Raw("Once upon a time"), seeded(11)).0;
    let b = run(&mut m, Prompt::Raw("Once upon a time"), seeded(11)).0;
    assert_eq!(a, b, "same seed, same text");
}

#[test]
fn a_cleared_cache_makes_a_request_independent_of_the_one_before() {
    let mut m = model();
    let seeded = GenerateOptions {
        max_tokens: 12,
        sampler: SamplerOptions {
            temperature: 1.0,
            top_p: 0.9,
            seed: 7,
            ..Default::default()
        },
        ..Default::default()
    };
    let question = [Message::user("Tell me about the sea.")];
    let (fresh, _) = run(&mut m, Prompt::Chat(&question), seeded.clone());
    let mut s = m.session().unwrap();
    collect(&mut s, Prompt::Raw("Something else first."), greedy(3));
    s.clear_cache();
    let (again, sum) = collect(&mut s, Prompt::Chat(&question), seeded.clone());
    assert_eq!(sum.reused_tokens, 0);
    assert_eq!(
        again, fresh,
        "same prompt and seed from an empty cache, same text"
    );
    // Not cleared, the same prompt comes from the cache but for its last token.
    let (_, sum) = collect(&mut s, Prompt::Chat(&question), seeded);
    assert_eq!(sum.reused_tokens, sum.prompt_tokens - 1);
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    let mut m = model();
    let long = "word ".repeat(400);
    let mut s = m.session().unwrap();
    match s.generate(Prompt::Raw(&long), greedy(1)) {
        Err(Error::Invalid(msg)) => assert!(msg.contains("context holds 128"), "{msg}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted a prompt longer than the context"),
    }
}
