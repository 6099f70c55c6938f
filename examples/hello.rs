//! The smallest complete embedding: load a model, ask, stream the answer.
//!   cargo run --release --example hello -- models/SmolLM2-135M-Instruct.Q4_1.gguf
use std::io::Write;

use edgeseek::{Event, GenerateOptions, LoadOptions, Message, Model, Prompt};

fn main() -> std::process::ExitCode {
    // Errors name the file and the problem: print them as such, not as Debug.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> edgeseek::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or("models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let mut model = Model::load(&path, &LoadOptions::default())?;
    let mut session = model.session()?;
    let question = [Message::user(
        "Why is the sky blue? Answer in one sentence.",
    )];
    let options = GenerateOptions {
        max_tokens: 256,
        ..Default::default()
    };
    for event in session.generate(Prompt::Chat(&question), options)? {
        match event? {
            Event::Text(piece) => print!("{piece}"),
            Event::ThinkStart => print!("<think>"),
            Event::ThinkEnd => print!("</think>"),
            Event::Done(s) => println!(
                "\n[{} tokens, {:.1} tok/s]",
                s.generated_tokens, s.decode_tok_s
            ),
            Event::Token { .. } => {}
        }
        std::io::stdout().flush().ok();
    }
    Ok(())
}
