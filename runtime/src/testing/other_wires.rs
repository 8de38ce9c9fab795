//! Anthropic's and Gemini's wire formats for the HTTP mock server: their requests read into a
//! [`MockRequest`] (the prompt is the text of every message, counted in the model's encoding
//! without chat framing), their answers and stream events written from the [`MockResponse`]
//! the shared [`MockProvider`](super::MockProvider) accounting admitted, and its errors in their
//! error envelopes (the status and the headers, `retry-after-ms` included, unchanged).

use std::time::Duration;

use serde_json::{json, Value};

use super::openai_wire::invalid_request;
use super::stream::{MockStream, StreamPacing};
use super::{MockRequest, MockResponse};
use crate::answers::http::HttpError;

/// Which of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    Anthropic,
    Gemini,
}

/// Every string under `key` anywhere in `value`, joined by newlines.
fn texts(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(text) if k == key => out.push(text.clone()),
                    _ => texts(v, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| texts(item, key, out)),
        _ => {}
    }
}

/// An Anthropic messages body: `model`, `max_tokens` (required), `system`, `messages` whose
/// `content` is a string or text blocks.
pub(crate) fn parse_messages(request: &Value) -> Result<MockRequest, HttpError> {
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return Err(invalid_request("model: Field required", Some("model")));
    };
    let Some(max_tokens) = request.get("max_tokens").and_then(Value::as_u64) else {
        return Err(invalid_request(
            "max_tokens: Field required",
            Some("max_tokens"),
        ));
    };
    let Some(messages) = request.get("messages").filter(|m| m.is_array()) else {
        return Err(invalid_request(
            "messages: Field required",
            Some("messages"),
        ));
    };
    let mut parts = Vec::new();
    if let Some(Value::String(system)) = request.get("system") {
        parts.push(system.clone());
    }
    for message in messages.as_array().into_iter().flatten() {
        match message.get("content") {
            Some(Value::String(text)) => parts.push(text.clone()),
            Some(blocks) => texts(blocks, "text", &mut parts),
            None => {}
        }
    }
    Ok(MockRequest::text(model, &parts.join("\n")).max_tokens(max_tokens))
}

/// A Gemini `generateContent` body for `model` (from the path): `contents[].parts[].text`,
/// `systemInstruction`, `generationConfig.maxOutputTokens` and `candidateCount`.
pub(crate) fn parse_generate(model: &str, request: &Value) -> Result<MockRequest, HttpError> {
    let Some(contents) = request.get("contents").filter(|c| c.is_array()) else {
        return Err(invalid_request(
            "* GenerateContentRequest.contents: contents is not specified",
            Some("contents"),
        ));
    };
    let mut parts = Vec::new();
    if let Some(system) = request.get("systemInstruction") {
        texts(system, "text", &mut parts);
    }
    texts(contents, "text", &mut parts);
    let config = request.get("generationConfig");
    let read = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_u64);
    let mut mock = MockRequest::text(model, &parts.join("\n"));
    if let Some(max) = read("maxOutputTokens") {
        mock = mock.max_tokens(max);
    }
    if let Some(n) = read("candidateCount") {
        mock = mock.n(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(mock)
}

/// The whole answer for an admitted request.
pub(crate) fn answer(wire: Wire, response: &MockResponse) -> Value {
    let text = format!("Mock reply ({} tokens).", response.completion_tokens);
    match wire {
        Wire::Anthropic => json!({
            "id": format!("msg_mock_{}", response.prompt_tokens),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": response.prompt_tokens,
                "output_tokens": response.completion_tokens
            }
        }),
        Wire::Gemini => gemini_chunk(response, &text, response.completion_tokens, Some("STOP")),
    }
}

fn gemini_chunk(response: &MockResponse, text: &str, so_far: u64, finish: Option<&str>) -> Value {
    json!({
        "candidates": [{
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": finish,
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": response.prompt_tokens,
            "candidatesTokenCount": so_far,
            "totalTokenCount": response.prompt_tokens.saturating_add(so_far)
        },
        "modelVersion": response.model
    })
}

/// The stream events for an admitted request: Anthropic's `message_start` (the input),
/// content deltas, `message_delta` (the whole output); Gemini's chunks with a growing
/// `usageMetadata`.
pub(crate) fn stream(wire: Wire, response: &MockResponse, pacing: StreamPacing) -> MockStream {
    let chunks = u64::from(pacing.chunks.max(1));
    let total = response.completion_tokens;
    let share = |index: u64| total / chunks + u64::from(index < total % chunks);
    let mut events: Vec<(Duration, Result<Value, HttpError>)> = Vec::new();
    match wire {
        Wire::Anthropic => {
            events.push((
                Duration::ZERO,
                Ok(json!({"type": "message_start", "message": {
                    "id": "msg_mock", "type": "message", "role": "assistant",
                    "model": response.model, "content": [],
                    "usage": {"input_tokens": response.prompt_tokens, "output_tokens": 1}
                }})),
            ));
            events.push((
                Duration::ZERO,
                Ok(json!({"type": "content_block_start", "index": 0,
                          "content_block": {"type": "text", "text": ""}})),
            ));
            for index in 0..chunks {
                let text = "tok ".repeat(share(index) as usize);
                events.push((
                    pacing.every,
                    Ok(json!({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "text_delta", "text": text}})),
                ));
            }
            events.push((
                Duration::ZERO,
                Ok(json!({"type": "content_block_stop", "index": 0})),
            ));
            events.push((
                Duration::ZERO,
                Ok(json!({"type": "message_delta",
                          "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                          "usage": {"output_tokens": total}})),
            ));
            events.push((Duration::ZERO, Ok(json!({"type": "message_stop"}))));
        }
        Wire::Gemini => {
            let mut so_far = 0;
            for index in 0..chunks {
                so_far += share(index);
                let finish = (index + 1 == chunks).then_some("STOP");
                let text = "tok ".repeat(share(index) as usize);
                events.push((
                    pacing.every,
                    Ok(gemini_chunk(response, &text, so_far, finish)),
                ));
            }
        }
    }
    MockStream::scripted(events)
}

/// The provider's error in `wire`'s envelope.
pub(crate) fn error(wire: Wire, mut error: HttpError) -> HttpError {
    if error.body.contains("insufficient_quota") {
        // Out of credit is told by its code, which every provider's classifier knows.
        return error;
    }
    let message = serde_json::from_str::<Value>(&error.body)
        .ok()
        .and_then(|body| {
            body.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    error.body = match wire {
        Wire::Anthropic => {
            let kind = match error.status {
                400 => "invalid_request_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Wire::Gemini => {
            let status = match error.status {
                400 => "INVALID_ARGUMENT",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                504 | 408 => "DEADLINE_EXCEEDED",
                _ => "INTERNAL",
            };
            json!({"error": {"code": error.status, "message": message, "status": status}})
        }
    }
    .to_string();
    error
}
