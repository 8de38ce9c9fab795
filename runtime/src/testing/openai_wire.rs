//! OpenAI's wire format as the mock speaks it: request bodies in, response bodies, rate-limit
//! headers and error bodies out.
//!
//! The provider engine decides *what* happens to a call; this file alone knows how OpenAI
//! writes it down, so the in-process [`MockProvider`](super::MockProvider) and the HTTP
//! `MockServer` send byte-for-byte the same answers.

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::request::{total_tokens, RequestedWork};
use crate::answers::http::HttpError;
use crate::model::tokens::{count_chat, count_tokens, encoding_for_model, ChatMessage};

/// The organization named in error messages and the `openai-organization` header.
pub(crate) const ORGANIZATION: &str = "org-mock";

/// Where OpenAI documents its rate limits; every rate-limit message ends with it.
const RATE_LIMITS_DOC: &str = "https://platform.openai.com/account/rate-limits";

// -- Rate-limit headers --------------------------------------------------------------------------

/// One bucket as the `x-ratelimit-*` headers describe it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BucketReport {
    /// The per-minute limit.
    pub(crate) limit: u64,
    /// Whole units left now.
    pub(crate) remaining: u64,
    /// The time until the bucket is full again.
    pub(crate) reset: Duration,
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, resets as Go durations.
pub(crate) fn rate_limit_headers(
    requests: BucketReport,
    tokens: BucketReport,
) -> Vec<(String, String)> {
    let header = |name: &str, value: String| (format!("x-ratelimit-{name}"), value);
    vec![
        header("limit-requests", requests.limit.to_string()),
        header("limit-tokens", tokens.limit.to_string()),
        header("remaining-requests", requests.remaining.to_string()),
        header("remaining-tokens", tokens.remaining.to_string()),
        header("reset-requests", go_duration(requests.reset)),
        header("reset-tokens", go_duration(tokens.reset)),
    ]
}

/// `d` rounded up to a whole millisecond, the resolution of every wait the mock announces.
pub(crate) fn ceil_to_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

/// A duration as Go's `time.Duration.String` prints it, after rounding up to the millisecond:
/// `0s`, `20ms`, `1s`, `46.001s`, `6m0s`, `1h30m0s`. OpenAI's `x-ratelimit-reset-*` headers and
/// "Please try again in ..." hints use this format.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = ceil_to_ms(d).as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let seconds = (ms / 1000) % 60;
    let millis = ms % 1000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    if millis > 0 {
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('s');
    out
}

// -- Error bodies --------------------------------------------------------------------------------

/// OpenAI's error envelope.
fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// A 400 `invalid_request_error` naming the parameter at fault.
pub(crate) fn invalid_request(message: impl Into<String>, param: Option<&str>) -> HttpError {
    let body = json!({"error": {
        "message": message.into(),
        "type": "invalid_request_error",
        "param": param,
        "code": null
    }});
    HttpError::new(400, Vec::<(String, String)>::new(), body.to_string())
}

/// The 404 for a route the mock does not serve.
#[cfg(feature = "mock-server")]
pub(crate) fn unknown_url() -> HttpError {
    let body = json!({"error": {
        "message": "Unknown request URL. The mock serves POST /v1/chat/completions and POST /v1/embeddings.",
        "type": "invalid_request_error",
        "param": null,
        "code": "unknown_url"
    }});
    HttpError::new(404, Vec::<(String, String)>::new(), body.to_string())
}

/// Which bucket a rate-limit 429 is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitScope {
    Requests,
    Tokens,
}

impl LimitScope {
    /// The error body's `type`.
    fn error_type(self) -> &'static str {
        match self {
            LimitScope::Requests => "requests",
            LimitScope::Tokens => "tokens",
        }
    }

    /// How the message names the limit.
    fn label(self) -> &'static str {
        match self {
            LimitScope::Requests => "requests per min (RPM)",
            LimitScope::Tokens => "tokens per min (TPM)",
        }
    }
}

/// What a rate-limit 429 reports: the bucket, its limit, what is used and what was asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LimitHit {
    pub(crate) scope: LimitScope,
    pub(crate) limit: u64,
    pub(crate) used: u64,
    pub(crate) requested: u64,
}

/// A 429 `rate_limit_exceeded` for `model`: `headers` plus `retry-after-ms` and `retry-after`
/// for a wait of `retry_after` (already whole milliseconds), and OpenAI's message, whose
/// "Please try again in ..." hint says the same wait.
pub(crate) fn rate_limit_exceeded(
    model: &str,
    hit: LimitHit,
    retry_after: Duration,
    mut headers: Vec<(String, String)>,
) -> HttpError {
    let message = format!(
        "Rate limit reached for {model} in organization {ORGANIZATION} on {}: Limit {}, Used {}, \
         Requested {}. Please try again in {}. Visit {RATE_LIMITS_DOC} to learn more.",
        hit.scope.label(),
        hit.limit,
        hit.used,
        hit.requested,
        go_duration(retry_after),
    );
    let retry_ms = retry_after.as_millis() as u64;
    headers.push(("retry-after-ms".to_owned(), retry_ms.to_string()));
    headers.push((
        "retry-after".to_owned(),
        retry_ms.div_ceil(1000).to_string(),
    ));
    let body = error_body(
        &message,
        hit.scope.error_type(),
        Some("rate_limit_exceeded"),
    );
    HttpError::new(429, headers, body)
}

/// A gateway's 429 (LiteLLM's proxy): its only hint the vendor-prefixed
/// `llm_provider-retry-after` in whole seconds, and none in its message.
pub(crate) fn gateway_rate_limited(
    retry_after: Duration,
    mut headers: Vec<(String, String)>,
) -> HttpError {
    let secs = (retry_after.as_millis() as u64).div_ceil(1000);
    headers.push(("llm_provider-retry-after".to_owned(), secs.to_string()));
    let body = error_body(
        "Rate limit exceeded for this deployment.",
        "rate_limit_error",
        Some("rate_limit_exceeded"),
    );
    HttpError::new(429, headers, body)
}

/// The 429 "Request too large" for a charge above the TPM limit: no retry-after, since no wait
/// makes it fit.
pub(crate) fn request_too_large(
    model: &str,
    tpm: u64,
    requested: u64,
    headers: Vec<(String, String)>,
) -> HttpError {
    let message = format!(
        "Request too large for {model} in organization {ORGANIZATION} on tokens per min (TPM): \
         Limit {tpm}, Requested {requested}. The input or output tokens must be reduced in order \
         to run successfully. Visit {RATE_LIMITS_DOC} to learn more."
    );
    let body = error_body(&message, "tokens", Some("rate_limit_exceeded"));
    HttpError::new(429, headers, body)
}

/// The 429 `insufficient_quota`: out of credit, never worth a retry.
pub(crate) fn insufficient_quota() -> HttpError {
    let body = error_body(
        "You exceeded your current quota, please check your plan and billing details. For more \
         information on this error, read the docs: \
         https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        Some("insufficient_quota"),
    );
    HttpError::new(429, Vec::<(String, String)>::new(), body)
}

/// A server-side failure with status `code`: Anthropic's `overloaded_error` for 529, OpenAI's
/// `server_error` otherwise.
pub(crate) fn server_error(code: u16) -> HttpError {
    let body = match code {
        529 => json!({
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}
        })
        .to_string(),
        503 => error_body(
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ),
        _ => error_body(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    };
    HttpError::new(code, Vec::<(String, String)>::new(), body)
}

/// The 408 of a request that hung until the server gave up.
pub(crate) fn timed_out() -> HttpError {
    let body = error_body("Request timed out.", "timeout", Some("timeout"));
    HttpError::new(408, Vec::<(String, String)>::new(), body)
}

// -- Response bodies -----------------------------------------------------------------------------

/// A `chat.completion` body: `n` choices of `per_choice` tokens each, cut at the cap when
/// `hit_cap` (`finish_reason: "length"`), with the `usage` that totals them.
/// A prompt's tokens and what the prompt cache did with them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PromptUsage {
    pub(crate) tokens: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_write: u64,
}

pub(crate) fn chat_completion_body(
    id: u64,
    model: &str,
    prompt: PromptUsage,
    per_choice: u64,
    n: u32,
    hit_cap: bool,
) -> Value {
    let prompt_tokens = prompt.tokens;
    let completion = per_choice.saturating_mul(u64::from(n));
    let finish = if hit_cap { "length" } else { "stop" };
    let choices: Vec<Value> = (0..n)
        .map(|index| {
            json!({
                "index": index,
                "message": {
                    "role": "assistant",
                    "content": format!("Mock reply {index} ({per_choice} tokens)."),
                    "refusal": null
                },
                "logprobs": null,
                "finish_reason": finish
            })
        })
        .collect();
    json!({
        "id": format!("chatcmpl-mock-{id}"),
        "object": "chat.completion",
        "created": unix_seconds_now(),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens.saturating_add(completion),
            "prompt_tokens_details": {
                "cached_tokens": prompt.cache_read,
                "cache_write_tokens": prompt.cache_write
            }
        },
        "service_tier": "default",
        "system_fingerprint": "fp_mock"
    })
}

/// An embeddings `list`: one made-up vector of `dimensions` per input, and the input tokens as
/// `usage`.
pub(crate) fn embeddings_body(model: &str, inputs: &[u64], dimensions: usize) -> Value {
    let prompt = total_tokens(inputs);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, tokens)| {
            json!({
                "object": "embedding",
                "index": index,
                "embedding": fake_embedding(index as u64, *tokens, dimensions)
            })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt}
    })
}

/// `openai-processing-ms`: the time from admission to the answer (the latency), in whole
/// milliseconds as OpenAI writes it.
pub(crate) fn processing_header(latency: Duration) -> (String, String) {
    (
        "openai-processing-ms".to_owned(),
        latency.as_millis().to_string(),
    )
}

/// The `x-request-id` of the response numbered `id`.
pub(crate) fn request_id_header(id: u64) -> (String, String) {
    ("x-request-id".to_owned(), format!("req_mock_{id}"))
}

fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A deterministic unit-ish vector, different per input.
fn fake_embedding(index: u64, tokens: u64, dimensions: usize) -> Vec<f64> {
    let mut x = index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(tokens)
        .wrapping_add(1);
    (0..dimensions)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2001) as f64 - 1000.0) / 1000.0
        })
        .collect()
}

// -- Request bodies ------------------------------------------------------------------------------

/// A request body as JSON, or the 400 OpenAI sends for one it cannot parse.
#[cfg(feature = "mock-server")]
pub(crate) fn parse_json_body(body: &[u8]) -> Result<Value, HttpError> {
    serde_json::from_slice(body).map_err(|error| {
        invalid_request(
            format!(
                "We could not parse the JSON body of your request. (HINT: the mock expects a \
                 JSON payload.) {error}"
            ),
            None,
        )
    })
}

/// The `model` of a request body, which must be a JSON object.
fn model_of(request: &Value) -> Result<String, HttpError> {
    if !request.is_object() {
        return Err(invalid_request(
            "The request body must be a JSON object.",
            None,
        ));
    }
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        _ => Err(invalid_request(
            "you must provide a model parameter",
            Some("model"),
        )),
    }
}

fn optional_u64(request: &Value, key: &str) -> Result<Option<u64>, HttpError> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            invalid_request(
                format!("Invalid '{key}': expected a non-negative integer."),
                Some(key),
            )
        }),
    }
}

/// [`optional_u64`] within `range`, or a 400 that names the parameter and the range.
fn optional_in_range(
    request: &Value,
    key: &str,
    range: RangeInclusive<u64>,
) -> Result<Option<u64>, HttpError> {
    match optional_u64(request, key)? {
        Some(value) if !range.contains(&value) => Err(invalid_request(
            format!(
                "Invalid '{key}': expected an integer between {} and {}.",
                range.start(),
                range.end()
            ),
            Some(key),
        )),
        value => Ok(value),
    }
}

/// The text of a message's `content`: a string, an array of parts (the text parts joined), or
/// null (tool calls).
fn content_text(content: Option<&Value>) -> Result<String, HttpError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")),
        Some(_) => Err(invalid_request(
            "Invalid 'messages[].content': expected a string or an array of content parts.",
            Some("messages"),
        )),
    }
}

/// A chat-completions body (`model`, `messages`, `max_completion_tokens` or `max_tokens`, `n`),
/// with the prompt counted by [`count_chat`] in the model's encoding, as the server counts it.
pub(crate) fn parse_chat(request: &Value) -> Result<(String, RequestedWork), HttpError> {
    let model = model_of(request)?;
    let Some(Value::Array(raw_messages)) = request.get("messages") else {
        return Err(invalid_request(
            "Missing required parameter: 'messages'.",
            Some("messages"),
        ));
    };
    if raw_messages.is_empty() {
        return Err(invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            Some("messages"),
        ));
    }
    let mut messages = Vec::with_capacity(raw_messages.len());
    for raw in raw_messages {
        let Some(role) = raw.get("role").and_then(Value::as_str) else {
            return Err(invalid_request(
                "Missing required parameter: 'messages[].role'.",
                Some("messages"),
            ));
        };
        let mut message = ChatMessage::new(role, content_text(raw.get("content"))?);
        if let Some(name) = raw.get("name").and_then(Value::as_str) {
            message = message.with_name(name);
        }
        messages.push(message);
    }
    let max_tokens = match optional_u64(request, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => optional_u64(request, "max_tokens")?,
    };
    let n = optional_in_range(request, "n", 1..=128)?.map_or(1, |n| n as u32);
    let encoding = encoding_for_model(&model);
    let prompt_tokens = count_chat(encoding, &messages);
    // A leading system (or developer) message is the prefix a prompt cache keeps.
    let prefix = messages
        .first()
        .filter(|first| matches!(first.role.as_str(), "system" | "developer") && messages.len() > 1)
        .map(|first| {
            let tokens = count_chat(encoding, std::slice::from_ref(first)).min(prompt_tokens);
            (first.content.clone(), tokens)
        });
    Ok((
        model,
        RequestedWork::Chat {
            prompt_tokens,
            prompt_chars: Some(super::request::chat_chars(&messages)),
            max_tokens,
            n,
            prefix,
        },
    ))
}

/// An embeddings body (`model`, `input` as a string, strings, or token arrays; `dimensions`,
/// default 8), with each input's tokens.
pub(crate) fn parse_embeddings(request: &Value) -> Result<(String, RequestedWork), HttpError> {
    let model = model_of(request)?;
    let encoding = encoding_for_model(&model);
    let bad_input = || {
        invalid_request(
            "Invalid 'input': expected a non-empty string, array of strings, array of tokens, \
             or array of token arrays.",
            Some("input"),
        )
    };
    let token_array = |items: &[Value]| -> Option<u64> {
        items
            .iter()
            .all(|v| v.as_u64().is_some())
            .then_some(items.len() as u64)
    };
    let inputs: Vec<u64> = match request.get("input") {
        Some(Value::String(text)) if !text.is_empty() => vec![count_tokens(encoding, text)],
        Some(Value::Array(items)) if !items.is_empty() => {
            if let Some(tokens) = token_array(items) {
                vec![tokens]
            } else {
                let mut inputs = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(text) if !text.is_empty() => {
                            inputs.push(count_tokens(encoding, text))
                        }
                        Value::Array(tokens) if !tokens.is_empty() => {
                            inputs.push(token_array(tokens).ok_or_else(bad_input)?)
                        }
                        _ => return Err(bad_input()),
                    }
                }
                inputs
            }
        }
        _ => return Err(bad_input()),
    };
    let dimensions = optional_in_range(request, "dimensions", 1..=4096)?.map_or(8, |d| d as usize);
    Ok((model, RequestedWork::Embeddings { inputs, dimensions }))
}

#[cfg(test)]
mod tests;
