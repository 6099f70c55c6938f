//! The OpenAI API's shapes: request bodies read into typed requests (every field checked,
//! errors naming the parameter), and the JSON of responses, stream chunks and errors.
//!
//! Followed: https://platform.openai.com/docs/api-reference/chat and /completions, and
//! DeepSeek's API for R1's reasoning (`reasoning_content` beside `content`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use edgeseek::{GenerateOptions, Message, Role};
use serde_json::{json, Map, Value};

/// OpenAI's error object, with the HTTP status it goes with.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// "invalid_request_error", "not_found_error", "server_error".
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
            kind: "not_found_error",
            param: None,
            code: None,
        }
    }

    pub fn server(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn to_json(&self) -> String {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
        .to_string()
    }
}

/// Sampling and stopping, common to both endpoints.
#[derive(Debug, Default)]
pub struct Params {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

impl Params {
    /// The library's generation options for this request (`n` numbers the request). Unset sampling parameters keep
    /// edgeseek's defaults (DeepSeek's advice for R1: temperature 0.6, top-p 0.95); without
    /// a seed every request samples differently, as OpenAI's API does.
    pub fn generate_options(&self, cancel: &Arc<AtomicBool>, n: u64) -> GenerateOptions {
        let mut o = GenerateOptions {
            // Unset: until the end of the turn or a full context, as OpenAI's default.
            max_tokens: self.max_tokens.unwrap_or(usize::MAX),
            stop: self.stop.clone(),
            cancel: Some(cancel.clone()),
            ..GenerateOptions::default()
        };
        if let Some(t) = self.temperature {
            o.sampler.temperature = t;
        }
        match self.top_p {
            // The smallest nucleus is the most likely token alone: greedy (the sampler wants
            // top-p above 0).
            Some(0.0) => o.sampler.temperature = 0.0,
            Some(t) => o.sampler.top_p = t,
            None => {}
        }
        o.sampler.seed = self.seed.unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        o
    }
}

pub enum Input {
    Chat(Vec<Message>),
    Text(String),
}

pub struct Request {
    pub input: Input,
    pub params: Params,
}

/// The request body as a JSON object, or why not.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("the request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid(
            None,
            "the request body must be a JSON object",
        )),
    }
}

/// `model` must name the model this server runs (clients send it; a typo must not
/// silently talk to another model).
fn check_model(obj: &Map<String, Value>, model_id: &str) -> Result<(), ApiError> {
    match obj.get("model") {
        None => Err(ApiError::invalid(
            Some("model"),
            "you must provide a model parameter",
        )),
        Some(Value::String(m)) if m == model_id => Ok(()),
        // OpenAI's answer to an unknown model: a 404 of type invalid_request_error.
        Some(Value::String(m)) => Err(ApiError::invalid(
            None,
            format!("the model '{m}' does not exist; this server runs '{model_id}'"),
        )
        .with_status(404)
        .with_code("model_not_found")),
        Some(_) => Err(ApiError::invalid(Some("model"), "model must be a string")),
    }
}

/// Parameters we do not implement are refused by name rather than ignored, when
/// ignoring them would change what the client gets.
fn refuse_unsupported(obj: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(n) = obj.get("n").filter(|v| !v.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(ApiError::invalid(
                Some("n"),
                "only n = 1 is supported (one choice per request)",
            ));
        }
    }
    for name in ["tools", "functions"] {
        if obj
            .get(name)
            .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(ApiError::invalid(
                Some(name),
                format!("{name} are not supported"),
            ));
        }
    }
    // false, 0 and null ask for nothing (chat's logprobs is a boolean, the completions'
    // an integer).
    for name in ["logprobs", "top_logprobs", "echo"] {
        let asked = obj
            .get(name)
            .is_some_and(|v| !(v.is_null() || v == &json!(false) || v.as_f64() == Some(0.0)));
        if asked {
            return Err(ApiError::invalid(
                Some(name),
                format!("{name} is not supported"),
            ));
        }
    }
    if let Some(rf) = obj.get("response_format").filter(|v| !v.is_null()) {
        if rf.get("type").and_then(Value::as_str) != Some("text") {
            return Err(ApiError::invalid(
                Some("response_format"),
                "only the text response format is supported",
            ));
        }
    }
    Ok(())
}

fn opt_number(
    obj: &Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if (min..=max).contains(&v) {
                Ok(Some(v))
            } else {
                Err(ApiError::invalid(
                    Some(name),
                    format!("{name} must be between {min} and {max}, not {v}"),
                ))
            }
        }
        Some(_) => Err(ApiError::invalid(
            Some(name),
            format!("{name} must be a number"),
        )),
    }
}

fn opt_integer(obj: &Map<String, Value>, name: &str, min: i64) -> Result<Option<i64>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) if i >= min => Ok(Some(i)),
            Some(i) => Err(ApiError::invalid(
                Some(name),
                format!("{name} must be at least {min}, not {i}"),
            )),
            None => Err(ApiError::invalid(
                Some(name),
                format!("{name} must be an integer"),
            )),
        },
    }
}

fn opt_bool(obj: &Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(
            Some(name),
            format!("{name} must be a boolean"),
        )),
    }
}

/// At most this many stop strings (OpenAI's limit).
const MAX_STOP: usize = 4;

fn read_params(obj: &Map<String, Value>, max_tokens_names: &[&str]) -> Result<Params, ApiError> {
    let mut max_tokens = None;
    for name in max_tokens_names {
        if let Some(n) = opt_integer(obj, name, 1)? {
            max_tokens = Some(n as usize);
        }
    }
    let stop = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid(Some("stop"), "stop must be a string or a list of strings")
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                Some("stop"),
                "stop must be a string or a list of strings",
            ))
        }
    };
    if stop.len() > MAX_STOP {
        return Err(ApiError::invalid(
            Some("stop"),
            format!("at most {MAX_STOP} stop strings"),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(Some("stop"), "a stop string is empty"));
    }
    let stream = opt_bool(obj, "stream")?;
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => opt_bool(o, "include_usage").map_err(|_| {
            ApiError::invalid(Some("stream_options"), "include_usage must be a boolean")
        })?,
        Some(_) => {
            return Err(ApiError::invalid(
                Some("stream_options"),
                "stream_options must be an object",
            ))
        }
    };
    if include_usage && !stream {
        return Err(ApiError::invalid(
            Some("stream_options"),
            "stream_options is only allowed when stream is true",
        ));
    }
    Ok(Params {
        max_tokens,
        temperature: opt_number(obj, "temperature", 0.0, 2.0)?.map(|v| v as f32),
        top_p: opt_number(obj, "top_p", 0.0, 1.0)?.map(|v| v as f32),
        seed: opt_integer(obj, "seed", i64::MIN)?.map(|s| s as u64),
        stop,
        stream,
        include_usage,
    })
}

/// A message's content: a string, or a list of text parts (`{"type": "text", "text"}`).
fn read_content(v: &Value, i: usize) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (Some(other), _) if other != "text" => {
                        return Err(ApiError::invalid(
                            Some(&param),
                            format!(
                                "content parts of type '{other}' are not supported (text only)"
                            ),
                        ))
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            Some(&param),
                            "a content part must be {\"type\": \"text\", \"text\": string}",
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid(
            Some(&param),
            "content must be a string or a list of text parts",
        )),
    }
}

fn read_messages(obj: &Map<String, Value>) -> Result<Vec<Message>, ApiError> {
    let items = match obj.get("messages") {
        None => {
            return Err(ApiError::invalid(
                Some("messages"),
                "you must provide messages",
            ))
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(
                Some("messages"),
                "messages must be a list",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "messages must not be empty",
        ));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            // "developer" is OpenAI's newer name for the system role.
            Some("system") | Some("developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some(other) => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].role")),
                    format!("role '{other}' is not supported (system, user, assistant)"),
                ))
            }
            None => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].role")),
                    "every message needs a role string",
                ))
            }
        };
        let content = match m.get("content") {
            Some(c) => read_content(c, i)?,
            None => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].content")),
                    "every message needs content",
                ))
            }
        };
        messages.push(Message::new(role, content));
    }
    Ok(messages)
}

/// `POST /v1/chat/completions`.
pub fn chat_request(body: &[u8], model_id: &str) -> Result<Request, ApiError> {
    let obj = body_object(body)?;
    check_model(&obj, model_id)?;
    refuse_unsupported(&obj)?;
    let params = read_params(&obj, &["max_tokens", "max_completion_tokens"])?;
    Ok(Request {
        input: Input::Chat(read_messages(&obj)?),
        params,
    })
}

/// `POST /v1/completions`. The prompt is one string (or a list holding one string).
pub fn completion_request(body: &[u8], model_id: &str) -> Result<Request, ApiError> {
    let obj = body_object(body)?;
    check_model(&obj, model_id)?;
    refuse_unsupported(&obj)?;
    if obj.get("suffix").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(Some("suffix"), "suffix is not supported"));
    }
    let mut params = read_params(&obj, &["max_tokens"])?;
    // The legacy endpoint's documented default.
    params.max_tokens.get_or_insert(16);
    let prompt = match obj.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or_default().to_string()
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                Some("prompt"),
                "prompt must be a string or a list of one string (one prompt per request)",
            ))
        }
        None => {
            return Err(ApiError::invalid(
                Some("prompt"),
                "you must provide a prompt",
            ))
        }
        Some(_) => return Err(ApiError::invalid(Some("prompt"), "prompt must be a string")),
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid(
            Some("prompt"),
            "prompt must not be empty",
        ));
    }
    Ok(Request {
        input: Input::Text(prompt),
        params,
    })
}

/// The `usage` object.
pub fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// What identifies one response: its id, creation time and model.
pub struct Envelope<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

impl Envelope<'_> {
    /// A whole `chat.completion`.
    pub fn chat_completion(
        &self,
        content: &str,
        reasoning: Option<&str>,
        finish_reason: &str,
        usage: Value,
    ) -> String {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(r) = reasoning {
            message["reasoning_content"] = r.into();
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
            "usage": usage,
        })
        .to_string()
    }

    /// A `chat.completion.chunk` with one choice: `delta`, and `finish_reason` on the last.
    /// With `include_usage`, every chunk carries `"usage": null` as OpenAI's do.
    pub fn chat_chunk(
        &self,
        delta: Value,
        finish_reason: Option<&str>,
        include_usage: bool,
    ) -> String {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk.to_string()
    }

    /// The last chunk of `stream_options.include_usage`: no choices, the usage.
    pub fn usage_chunk(&self, object: &str, usage: Value) -> String {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        })
        .to_string()
    }

    /// A `text_completion` (whole, or one stream chunk when `usage` is None).
    pub fn text_completion(
        &self,
        text: &str,
        finish_reason: Option<&str>,
        usage: Option<Value>,
    ) -> String {
        let mut v = json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        v.to_string()
    }
}

/// One model object, for `GET /v1/models` and `GET /v1/models/{id}`.
pub fn model_object(model_id: &str, created: u64) -> Value {
    json!({"id": model_id, "object": "model", "created": created, "owned_by": "edgeseek"})
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "m";

    fn chat(body: Value) -> Result<Request, ApiError> {
        chat_request(body.to_string().as_bytes(), MODEL)
    }

    /// The parameter and status an invalid body is refused with.
    fn refused(body: Value) -> (Option<String>, u16, Option<&'static str>) {
        match chat(body) {
            Ok(_) => panic!("accepted"),
            Err(e) => (e.param, e.status, e.code),
        }
    }

    #[test]
    fn a_chat_request_reads_every_parameter() {
        let r = chat(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]},
            ],
            "max_completion_tokens": 9, "temperature": 0.2, "top_p": 0.9, "seed": 3,
            "stop": ["a", "b"], "stream": true, "stream_options": {"include_usage": true}, "n": 1,
        }))
        .unwrap();
        let Input::Chat(m) = r.input else {
            panic!("a chat")
        };
        assert_eq!(m, vec![Message::system("Be brief."), Message::user("Hi!")]);
        let p = r.params;
        assert_eq!(
            (p.max_tokens, p.seed, p.stream, p.include_usage),
            (Some(9), Some(3), true, true)
        );
        assert_eq!((p.temperature, p.top_p), (Some(0.2), Some(0.9)));
        assert_eq!(p.stop, vec!["a", "b"]);
    }

    #[test]
    fn bad_chat_requests_name_the_parameter() {
        let user = json!([{"role": "user", "content": "hi"}]);
        // Every one a 400 naming its parameter.
        let cases = [
            (json!({"messages": user}), "model"),
            (json!({"model": 5, "messages": user}), "model"),
            (json!({"model": "m"}), "messages"),
            (json!({"model": "m", "messages": "hi"}), "messages"),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": user, "max_tokens": "5"}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": user, "max_tokens": 0}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": user, "temperature": "hot"}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": user, "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": user, "top_p": 1.5}),
                "top_p",
            ),
            (json!({"model": "m", "messages": user, "seed": 1.5}), "seed"),
            (json!({"model": "m", "messages": user, "stop": 5}), "stop"),
            (
                json!({"model": "m", "messages": user, "stop": ["a", 1]}),
                "stop",
            ),
            (
                json!({"model": "m", "messages": user, "stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                json!({"model": "m", "messages": user, "stop": [""]}),
                "stop",
            ),
            (
                json!({"model": "m", "messages": user, "stream": "yes"}),
                "stream",
            ),
            (
                json!({"model": "m", "messages": user, "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (json!({"model": "m", "messages": user, "n": 2}), "n"),
            (
                json!({"model": "m", "messages": user, "tools": [{"type": "function"}]}),
                "tools",
            ),
            (
                json!({"model": "m", "messages": user, "logprobs": true}),
                "logprobs",
            ),
        ];
        for (body, param) in cases {
            let (p, s, _) = refused(body.clone());
            assert_eq!((p.as_deref(), s), (Some(param), 400), "{body}");
        }
        let (p, s, code) = refused(json!({"model": "other", "messages": user}));
        assert_eq!((p, s, code), (None, 404, Some("model_not_found")));
        for body in [&b"{"[..], b"[]", b"", b"\xff"] {
            let e = chat_request(body, MODEL).err().expect("refused");
            assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        }
    }

    #[test]
    fn a_completion_request_takes_one_prompt_and_defaults_to_16_tokens() {
        let r = completion_request(br#"{"model": "m", "prompt": ["Once"]}"#, MODEL).unwrap();
        assert!(matches!(r.input, Input::Text(ref t) if t == "Once"));
        assert_eq!(r.params.max_tokens, Some(16));
        for body in [
            r#"{"model": "m"}"#,
            r#"{"model": "m", "prompt": ""}"#,
            r#"{"model": "m", "prompt": [1, 2]}"#,
            r#"{"model": "m", "prompt": ["a", "b"]}"#,
            r#"{"model": "m", "prompt": "a", "echo": true}"#,
            r#"{"model": "m", "prompt": "a", "suffix": "b"}"#,
        ] {
            assert!(
                completion_request(body.as_bytes(), MODEL).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_are_openai_error_objects() {
        let e: Value =
            serde_json::from_str(&ApiError::invalid(Some("n"), "bad").to_json()).unwrap();
        assert_eq!(
            e,
            json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "n", "code": null}})
        );
    }

    #[test]
    fn request_parameters_become_generation_options() {
        let cancel = Arc::new(AtomicBool::new(false));
        let p = Params {
            max_tokens: Some(7),
            temperature: Some(0.0),
            top_p: Some(0.5),
            seed: Some(42),
            stop: vec!["\n".into()],
            ..Default::default()
        };
        let o = p.generate_options(&cancel, 1);
        assert_eq!(o.max_tokens, 7);
        assert_eq!(o.sampler.temperature, 0.0);
        assert_eq!(o.sampler.top_p, 0.5);
        assert_eq!(o.sampler.seed, 42);
        assert_eq!(o.stop, vec!["\n".to_string()]);
        // Unset: edgeseek's defaults, no token limit, and a seed per request.
        let unset = Params::default();
        let (a, b) = (
            unset.generate_options(&cancel, 1),
            unset.generate_options(&cancel, 2),
        );
        assert_eq!(
            a.sampler.temperature,
            GenerateOptions::default().sampler.temperature
        );
        assert_eq!(a.max_tokens, usize::MAX);
        assert_ne!(a.sampler.seed, b.sampler.seed);
        // top_p 0: greedy.
        let zero = Params {
            top_p: Some(0.0),
            ..Default::default()
        };
        let z = zero.generate_options(&cancel, 3);
        assert_eq!(
            (z.sampler.temperature, z.sampler.top_p),
            (0.0, GenerateOptions::default().sampler.top_p)
        );
    }
}
