"""The official `openai` Python client against `examples/serve` (run by tests/server_openai.rs).

    python3 tests/openai_client.py --url http://127.0.0.1:PORT/v1 --model ID \
        [--r1-url http://127.0.0.1:PORT2/v1 --r1-model ID2]

--url serves SmolLM2-135M-Instruct (a real model: it knows Paris); --r1-url a tiny random
model rendered with the DeepSeek-R1 template, whose reply starts inside a think span, so
all of it is reasoning. Exits non-zero with a message on the first failed check.
"""

import argparse
import sys

import openai

QUESTION = "What is the capital of France? Answer in one sentence."


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what.splitlines()[0]}")


def ask(client, model, **kw):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, **kw
    )


def smollm2(url, model):
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)

    ids = [m.id for m in client.models.list()]
    check(ids == [model], f"models.list() names the model: {ids}")

    whole = ask(client, model, max_tokens=48)
    answer = whole.choices[0].message.content
    check("Paris" in answer, f"a whole chat completion answers: {answer!r}")
    check(whole.choices[0].finish_reason == "stop", f"finish_reason stop: {whole.choices[0].finish_reason}")
    check(whole.object == "chat.completion" and whole.id.startswith("chatcmpl-"), "object and id")
    u = whole.usage
    check(
        u.prompt_tokens > 10 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
        f"usage adds up: {u}",
    )

    chunks = list(ask(client, model, max_tokens=48, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == answer, f"the stream says the same: {text!r}")
    check(chunks[0].choices[0].delta.role == "assistant", "the first delta carries the role")
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finish == ["stop"], f"one finish_reason, stop: {finish}")
    check(not chunks[-1].choices and chunks[-1].usage is not None, "include_usage adds a last chunk with usage")
    check(chunks[-1].usage.model_dump() == u.model_dump(), f"the same usage: {chunks[-1].usage}")

    stopped = ask(client, model, max_tokens=48, stop=["Paris", "Lyon"])
    cut = stopped.choices[0].message.content
    check("Paris" not in cut and answer.startswith(cut), f"a stop string ends the answer before it: {cut!r}")
    check(stopped.choices[0].finish_reason == "stop", "finish_reason stop at a stop string")

    short = ask(client, model, max_completion_tokens=3)
    check(short.choices[0].finish_reason == "length", f"finish_reason length: {short.choices[0].finish_reason}")
    check(short.usage.completion_tokens == 3, f"max_completion_tokens counts tokens: {short.usage}")

    parts = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        temperature=0,
        max_tokens=48,
    )
    check(parts.choices[0].message.content == answer, "content as text parts reads the same")

    # Sampling: the same seed gives the same text, at temperature 1 with a nucleus.
    sampled = [
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Tell me about the sea."}],
            temperature=1.0,
            top_p=0.9,
            seed=7,
            max_tokens=12,
        ).choices[0].message.content
        for _ in range(2)
    ]
    check(sampled[0] == sampled[1] and sampled[0] != "", f"seed makes sampling repeatable: {sampled[0]!r}")

    # A conversation: system prompt, an earlier answer, a follow-up that needs both.
    follow = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And of Italy?"},
        ],
        temperature=0,
        max_tokens=48,
    )
    text = follow.choices[0].message.content
    check("Rome" in text, f"a multi-turn conversation with a system prompt: {text!r}")
    check(follow.usage.prompt_tokens > u.prompt_tokens, "the whole conversation is the prompt")

    done = client.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0)
    text = done.choices[0].text
    check(len(text) > 0 and done.object == "text_completion", f"a text completion: {text!r}")
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=model, prompt="The capital of France is", max_tokens=4, temperature=0, stream=True
        )
        if c.choices
    )
    check(streamed == text, f"a streamed text completion says the same: {streamed!r}")

    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        check(False, "an unknown model is refused")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and "gpt-4o" in e.message, f"an unknown model is a 404: {e.message}")
    try:
        ask(client, model, n=2)
        check(False, "n = 2 is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.body["param"] == "n", f"n = 2 is a 400 naming n: {e.message}")


def r1(url, model):
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    whole = ask(client, model, max_tokens=12)
    msg = whole.choices[0].message
    reasoning = getattr(msg, "reasoning_content", None)
    check(isinstance(reasoning, str) and reasoning != "", f"reasoning_content on the R1 template: {reasoning!r}")
    check(msg.content == "", f"no answer while the think span is open: {msg.content!r}")
    check(whole.choices[0].finish_reason == "length", "cut by max_tokens: length")

    chunks = list(ask(client, model, max_tokens=12, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    streamed = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    check(streamed == reasoning, f"reasoning_content deltas add up to the same: {streamed!r}")
    check(all(not d.content for d in deltas), "no content deltas inside the think span")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--r1-url")
    ap.add_argument("--r1-model")
    a = ap.parse_args()
    print(f"openai {openai.__version__}")
    smollm2(a.url, a.model)
    if a.r1_url:
        r1(a.r1_url, a.r1_model)


if __name__ == "__main__":
    main()
