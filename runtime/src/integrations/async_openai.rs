//! [`async-openai`](::async_openai) 0.43 (feature `async-openai`): estimates, output budgets,
//! usage and error classification for its chat-completion and embedding types.
//!
//! | type | trait | what it does |
//! |---|---|---|
//! | `CreateChatCompletionRequest` | [`EstimateTokens`] | its messages as [`count_chat`] counts them, plus tool definitions and a JSON-schema response format (see the impl) |
//! | `CreateChatCompletionRequest` | [`OutputBudget`] | `max_completion_tokens`, else the deprecated `max_tokens`; `n` |
//! | `ChatCompletionRequestMessage` | [`EstimateTokens`] | one message, or a slice/`Vec` of them as one conversation |
//! | `CreateEmbeddingRequest` | [`EstimateTokens`], [`OutputBudget`] | its input strings (token arrays count their length); no output |
//! | `CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse`, `CompletionUsage` | [`ReportUsage`] | `usage.prompt_tokens` (of it `prompt_tokens_details.cached_tokens`, `cache_write_tokens`) / `completion_tokens` |
//! | `CreateChatCompletionStreamResponse` | [`StreamUsage`] | the last chunk's `usage` (`#[rate_limited(.., stream)]`) |
//! | `CreateChatCompletionRequest` | [`IncludeStreamUsage`] | sets `stream_options.include_usage` |
//! | `CreateEmbeddingResponse`, `CreateBase64EmbeddingResponse` | [`ReportUsage`] | `usage.prompt_tokens`, no output |
//! | `OpenAIError`, `ApiErrorResponse` | [`Classify`] | see the `OpenAIError` impl |
//!
//! [`CallError`](crate::CallError) holds `OpenAIError` and the limiter's [`Error`](crate::Error) and classifies
//! both, so a rate-limited function can use `?` on the client's calls:
//!
//! ```no_run
//! # use ratelimited_runtime::facade as ratelimited;
//! use async_openai::config::OpenAIConfig;
//! use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
//! use async_openai::Client;
//! use ratelimited::CallError;
//!
//! // With the facade: #[ratelimited::rate_limited(model = request.model.as_str())]
//! // The request argument gives the estimate (its messages) and the output reservation
//! // (max_completion_tokens × n); the response's usage settles it.
//! async fn chat(
//!     client: &Client<OpenAIConfig>,
//!     request: &CreateChatCompletionRequest,
//! ) -> Result<CreateChatCompletionResponse, CallError> {
//!     Ok(client.chat().create(request.clone()).await?)
//! }
//! # let _ = chat;
//! ```
//!
//! # Turn async-openai's own retries off
//!
//! The 0.43 client retries by default: every `Client` (`Client::new`, `with_config`, `build`,
//! `with_http_client`) runs requests through its `OpenAIRetryLayer` with 3 retries on 429 (except
//! `insufficient_quota`), 5xx and connect errors, sleeping `retry-after` (whole seconds only) or
//! 0.1-8 s of exponential backoff. Inside a `#[rate_limited]` function that retry happens
//! *within one attempt*: it bypasses the shared limiter (no re-reservation, the family's other
//! callers are not held back), and this crate retries again on top of it (up to 4 × your retry
//! budget requests). Replace the executor with one that does not retry; that needs async-openai's
//! `middleware` feature, enabled on your own dependency:
//!
//! ```toml
//! async-openai = { version = "0.43", features = ["rustls", "chat-completion", "middleware"] }
//! ```
//!
//! ```text
//! use async_openai::middleware::ReqwestService;
//! use async_openai::{config::OpenAIConfig, Client};
//!
//! // The plain reqwest transport: one request per attempt, no retry layer.
//! let client = Client::with_config(OpenAIConfig::new())
//!     .with_http_service(ReqwestService::new(reqwest::Client::new()));
//! ```
//!
//! Without it, at least set this crate's retry budget low for these functions
//! (`#[rate_limited(retries = 1)]`): the final error still classifies correctly, but a
//! rate-limit answer's `retry-after` headers are gone by then (async-openai keeps only the
//! body), so the wait comes from the message's "try again in ..." hint.

use std::time::SystemTime;

use ::async_openai::error::{ApiError, ApiErrorResponse, OpenAIError, StreamError};
use ::async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestAssistantMessageContentPart, ChatCompletionRequestDeveloperMessageContent,
    ChatCompletionRequestDeveloperMessageContentPart, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestSystemMessageContentPart,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestToolMessageContentPart,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, ResponseFormat,
};
use ::async_openai::types::embeddings::{
    CreateBase64EmbeddingResponse, CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput,
};

use crate::answers::classify::{Classify, Verdict};
use crate::answers::http::classify_http;
use crate::answers::usage::ReportUsage;
use crate::call::stream::{IncludeStreamUsage, StreamUsage, StreamUsageUpdate};
use crate::model::output::{MaxOutput, OutputBudget};
use crate::model::tokens::{count_chat, count_tokens, ChatMessage, Encoding};
use crate::units::cost::Usage;
use crate::EstimateTokens;

// ---------------------------------------------------------------------------------------------
// Estimates
// ---------------------------------------------------------------------------------------------

/// The role and participant name of a message, as the chat format frames them.
fn role_and_name(message: &ChatCompletionRequestMessage) -> (&'static str, Option<&str>) {
    match message {
        ChatCompletionRequestMessage::Developer(m) => ("developer", m.name.as_deref()),
        ChatCompletionRequestMessage::System(m) => ("system", m.name.as_deref()),
        ChatCompletionRequestMessage::User(m) => ("user", m.name.as_deref()),
        ChatCompletionRequestMessage::Assistant(m) => ("assistant", m.name.as_deref()),
        ChatCompletionRequestMessage::Tool(_) => ("tool", None),
        ChatCompletionRequestMessage::Function(m) => ("function", Some(m.name.as_str())),
    }
}

/// Calls `f` with every piece of prompt text in a message: string contents, the text parts of
/// array contents, refusals, and an assistant's tool calls (name and arguments). Images, audio
/// and files are not text and are skipped.
fn for_each_text<'a>(message: &'a ChatCompletionRequestMessage, f: &mut impl FnMut(&'a str)) {
    match message {
        ChatCompletionRequestMessage::Developer(m) => match &m.content {
            ChatCompletionRequestDeveloperMessageContent::Text(t) => f(t),
            ChatCompletionRequestDeveloperMessageContent::Array(parts) => {
                for part in parts {
                    match part {
                        ChatCompletionRequestDeveloperMessageContentPart::Text(p) => f(&p.text),
                    }
                }
            }
        },
        ChatCompletionRequestMessage::System(m) => match &m.content {
            ChatCompletionRequestSystemMessageContent::Text(t) => f(t),
            ChatCompletionRequestSystemMessageContent::Array(parts) => {
                for part in parts {
                    match part {
                        ChatCompletionRequestSystemMessageContentPart::Text(p) => f(&p.text),
                    }
                }
            }
        },
        ChatCompletionRequestMessage::User(m) => match &m.content {
            ChatCompletionRequestUserMessageContent::Text(t) => f(t),
            ChatCompletionRequestUserMessageContent::Array(parts) => {
                for part in parts {
                    match part {
                        ChatCompletionRequestUserMessageContentPart::Text(p) => f(&p.text),
                        // Charged by image size / audio length / file pages, not characters.
                        ChatCompletionRequestUserMessageContentPart::ImageUrl(_)
                        | ChatCompletionRequestUserMessageContentPart::InputAudio(_)
                        | ChatCompletionRequestUserMessageContentPart::File(_) => {}
                    }
                }
            }
        },
        ChatCompletionRequestMessage::Assistant(m) => {
            match &m.content {
                Some(ChatCompletionRequestAssistantMessageContent::Text(t)) => f(t),
                Some(ChatCompletionRequestAssistantMessageContent::Array(parts)) => {
                    for part in parts {
                        match part {
                            ChatCompletionRequestAssistantMessageContentPart::Text(p) => f(&p.text),
                            ChatCompletionRequestAssistantMessageContentPart::Refusal(p) => {
                                f(&p.refusal)
                            }
                        }
                    }
                }
                None => {}
            }
            if let Some(refusal) = &m.refusal {
                f(refusal);
            }
            for call in m.tool_calls.iter().flatten() {
                match call {
                    ChatCompletionMessageToolCalls::Function(c) => {
                        f(&c.function.name);
                        f(&c.function.arguments);
                    }
                    ChatCompletionMessageToolCalls::Custom(c) => {
                        f(&c.custom_tool.name);
                        f(&c.custom_tool.input);
                    }
                }
            }
            #[allow(deprecated)]
            if let Some(call) = &m.function_call {
                f(&call.name);
                f(&call.arguments);
            }
        }
        ChatCompletionRequestMessage::Tool(m) => match &m.content {
            ChatCompletionRequestToolMessageContent::Text(t) => f(t),
            ChatCompletionRequestToolMessageContent::Array(parts) => {
                for part in parts {
                    match part {
                        ChatCompletionRequestToolMessageContentPart::Text(p) => f(&p.text),
                    }
                }
            }
        },
        ChatCompletionRequestMessage::Function(m) => {
            if let Some(content) = &m.content {
                f(content);
            }
        }
    }
}

/// [`count_chat`] over `messages`, with each message's text pieces counted one by one.
///
/// For the exact encodings this equals `count_chat` of the same messages with their text as
/// `content`; for approximations each piece is scaled (rounded up) on its own, which can add
/// at most one token per piece.
fn estimate_messages(messages: &[ChatCompletionRequestMessage], encoding: Encoding) -> u64 {
    let framing: Vec<ChatMessage> = messages
        .iter()
        .map(|m| {
            let (role, name) = role_and_name(m);
            ChatMessage {
                role: role.to_owned(),
                content: String::new(),
                name: name.map(str::to_owned),
            }
        })
        .collect();
    let mut total = count_chat(encoding, &framing);
    for message in messages {
        for_each_text(message, &mut |text| {
            total = total.saturating_add(count_tokens(encoding, text));
        });
    }
    total
}

fn message_text_len(message: &ChatCompletionRequestMessage) -> usize {
    let mut len = 0;
    for_each_text(message, &mut |text| len += text.len());
    len
}

/// A chat message's prompt tokens, as [`count_chat`] counts them.
///
/// One message on its own is a one-message conversation (reply priming included); a slice or
/// `Vec` of messages is one conversation, primed once. Text parts of array contents, refusals
/// and an assistant's tool calls (function name and arguments) are counted. **Images, audio and
/// files are not**: OpenAI charges them by size, not characters; pass `tokens = ...` to
/// `#[rate_limited]` when requests carry many.
impl EstimateTokens for ChatCompletionRequestMessage {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        estimate_messages(std::slice::from_ref(self), encoding)
    }

    fn estimate_tokens_of_slice(items: &[Self], encoding: Encoding) -> u64 {
        estimate_messages(items, encoding)
    }

    fn text_len(&self) -> usize {
        message_text_len(self)
    }
}

/// The request's prompt tokens: its messages as [`count_chat`] counts them (3 per message, its
/// role, text and name, 1 more per name, 3 for the reply priming; what counts as text is as for
/// `ChatCompletionRequestMessage`: **images, audio and files don't**), plus the other prompt text the
/// request sends: `tools` (and the deprecated `functions`) and a `json_schema` response format,
/// each counted as its serialized JSON (OpenAI renders them in its own, somewhat shorter,
/// format: a small over-estimate, the safe side).
///
/// The output reservation comes from [`OutputBudget`], not from here.
impl EstimateTokens for CreateChatCompletionRequest {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        let mut total = estimate_messages(&self.messages, encoding);
        let mut add_json = |value: Result<String, serde_json::Error>| {
            if let Ok(json) = value {
                total = total.saturating_add(count_tokens(encoding, &json));
            }
        };
        if let Some(tools) = self.tools.as_ref().filter(|t| !t.is_empty()) {
            add_json(serde_json::to_string(tools));
        }
        #[allow(deprecated)]
        if let Some(functions) = self.functions.as_ref().filter(|f| !f.is_empty()) {
            add_json(serde_json::to_string(functions));
        }
        if let Some(ResponseFormat::JsonSchema { json_schema }) = &self.response_format {
            add_json(serde_json::to_string(json_schema));
        }
        total
    }

    fn text_len(&self) -> usize {
        self.messages.iter().map(message_text_len).sum()
    }
}

/// The input's tokens: each string counted, token arrays by their length (they already are
/// tokens). No per-request overhead: embeddings have none.
impl EstimateTokens for CreateEmbeddingRequest {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        match &self.input {
            EmbeddingInput::String(s) => count_tokens(encoding, s),
            EmbeddingInput::StringArray(items) => items
                .iter()
                .fold(0, |sum, s| sum.saturating_add(count_tokens(encoding, s))),
            EmbeddingInput::IntegerArray(tokens) => tokens.len() as u64,
            EmbeddingInput::ArrayOfIntegerArray(arrays) => {
                arrays.iter().map(|tokens| tokens.len() as u64).sum()
            }
        }
    }

    fn text_len(&self) -> usize {
        match &self.input {
            EmbeddingInput::String(s) => s.len(),
            EmbeddingInput::StringArray(items) => items.iter().map(String::len).sum(),
            EmbeddingInput::IntegerArray(_) | EmbeddingInput::ArrayOfIntegerArray(_) => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output budgets
// ---------------------------------------------------------------------------------------------

/// `max_completion_tokens`, else the deprecated `max_tokens` (unset: the attribute's
/// `max_tokens` or the per-model default applies); `n` (unset: 1).
impl OutputBudget for CreateChatCompletionRequest {
    fn output_budget(&self) -> MaxOutput {
        #[allow(deprecated)]
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        MaxOutput {
            max_tokens: max_tokens.map(u64::from),
            n: self.n.map(u32::from),
        }
    }
}

/// Embeddings produce no output tokens: `max_tokens` is 0 (also for deployments whose name
/// doesn't say "embedding").
impl OutputBudget for CreateEmbeddingRequest {
    fn output_budget(&self) -> MaxOutput {
        MaxOutput {
            max_tokens: Some(0),
            n: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// `prompt_tokens` in (the whole prompt, its cached part included), of which
/// `prompt_tokens_details.cached_tokens` were read from the prompt cache and
/// `cache_write_tokens` written to it; `completion_tokens` out (reasoning tokens are already
/// inside it).
impl ReportUsage for CompletionUsage {
    fn usage(&self) -> Option<Usage> {
        let details = self.prompt_tokens_details.as_ref();
        let cached = details.and_then(|d| d.cached_tokens).map_or(0, u64::from);
        let written = details
            .and_then(|d| d.cache_write_tokens)
            .and_then(|tokens| u64::try_from(tokens).ok())
            .unwrap_or(0);
        Some(
            Usage::new(
                u64::from(self.prompt_tokens),
                u64::from(self.completion_tokens),
            )
            .with_cache_reads(cached)
            .with_cache_writes(written),
        )
    }
}

/// Its `usage` (`None`, keeping the estimate, if the server sent none).
impl ReportUsage for CreateChatCompletionResponse {
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().and_then(ReportUsage::usage)
    }
}

/// A streamed chunk's `usage`: only the last chunk has one, and only with
/// `stream_options.include_usage`. A `Vec` of the collected chunks sums to it.
impl ReportUsage for CreateChatCompletionStreamResponse {
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().and_then(ReportUsage::usage)
    }
}

/// The chunks of `client.chat().create_stream(..)` (`ChatCompletionResponseStream` yields
/// `Result<CreateChatCompletionStreamResponse, OpenAIError>`): the last one carries the whole
/// usage when the request set `stream_options.include_usage`
/// ([`IncludeStreamUsage`] sets it).
impl StreamUsage for CreateChatCompletionStreamResponse {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        let usage = ReportUsage::usage(self.usage.as_ref()?)?;
        Some(StreamUsageUpdate::total(usage))
    }
}

/// Sets `stream_options.include_usage = Some(true)` unless the request already says.
impl IncludeStreamUsage for CreateChatCompletionRequest {
    fn include_stream_usage(&mut self) {
        let options = self.stream_options.get_or_insert_with(Default::default);
        options.include_usage.get_or_insert(true);
    }
}

/// `usage.prompt_tokens` in, nothing out.
impl ReportUsage for CreateEmbeddingResponse {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(u64::from(self.usage.prompt_tokens), 0))
    }
}

/// `usage.prompt_tokens` in, nothing out.
impl ReportUsage for CreateBase64EmbeddingResponse {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(u64::from(self.usage.prompt_tokens), 0))
    }
}

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

/// What async-openai's errors mean for retrying.
///
/// | error | verdict |
/// |---|---|
/// | `ApiError` | as `ApiErrorResponse` classifies (below) |
/// | `Reqwest` | `reqwest::Error`'s [`Classify`]: timeouts, connect errors and failures while sending or reading → [`Verdict::Transient`], else [`Verdict::Fatal`] |
/// | `StreamError` from the transport mid-stream (`Transport error: ...`) | [`Verdict::Transient`] (the whole call runs again) |
/// | `JSONDeserialize`, `InvalidArgument`, other stream errors, file errors | [`Verdict::Fatal`] |
/// | anything else (file errors; `Boxed`, with async-openai's `middleware` feature) | transient if a transient `reqwest::Error` or `std::io::Error` (reset, timed out, ...) is among its `source()`s, else [`Verdict::Fatal`]. `Boxed` forwards `source()` to the boxed error's own source, so the boxed error itself is not seen: a tower `timeout` layer's `Elapsed` is fatal; put the timeout on the `reqwest::Client` instead |
///
/// `JSONDeserialize` is also what async-openai returns for an error response whose body is not
/// OpenAI's JSON (a proxy's plain-text 429): the status is lost there, so it is fatal.
impl Classify for OpenAIError {
    fn classify(&self) -> Verdict {
        match self {
            OpenAIError::ApiError(error) => error.classify(),
            OpenAIError::Reqwest(error) => error.classify(),
            OpenAIError::StreamError(error) => match error.as_ref() {
                StreamError::EventStream(message) if message.starts_with("Transport error") => {
                    Verdict::Transient { retry_after: None }
                }
                _ => Verdict::Fatal,
            },
            OpenAIError::JSONDeserialize(..) | OpenAIError::InvalidArgument(_) => Verdict::Fatal,
            // File errors, and `Boxed` when another crate enables async-openai's `middleware`.
            other => classify_by_source(other),
        }
    }
}

fn classify_by_source(error: &(dyn std::error::Error + 'static)) -> Verdict {
    let mut source = error.source();
    while let Some(err) = source {
        let verdict = if let Some(e) = err.downcast_ref::<::reqwest::Error>() {
            e.classify()
        } else if let Some(e) = err.downcast_ref::<std::io::Error>() {
            e.classify()
        } else {
            Verdict::Fatal
        };
        if verdict.is_retryable() {
            return verdict;
        }
        source = err.source();
    }
    Verdict::Fatal
}

/// An error response from the API, classified as [`classify_http`] classifies the same status
/// and body (async-openai keeps the body's `error` object but not the headers):
///
/// - `insufficient_quota` (code or type) → [`Verdict::QuotaExhausted`], never retried;
/// - a message starting "Request too large", or a tokens-per-minute limit message with
///   `Requested` but no `Used` → [`Verdict::RequestTooLarge`], never retried;
/// - HTTP 429, or code `rate_limit_exceeded` / type `rate_limit_error` whatever the status →
///   [`Verdict::RateLimited`], waiting as the message says ("Please try again in 1.146s");
/// - 408, 409, 5xx → [`Verdict::Transient`] (async-openai keeps a 5xx body verbatim as the
///   message, so a JSON body there is read as such);
/// - anything else → [`Verdict::Fatal`].
impl Classify for ApiErrorResponse {
    fn classify(&self) -> Verdict {
        classify_api_error(
            self.status_code.as_u16(),
            &self.api_error,
            SystemTime::now(),
        )
    }
}

fn classify_api_error(status: u16, error: &ApiError, now: SystemTime) -> Verdict {
    let says_rate_limited = [error.code.as_deref(), error.r#type.as_deref()]
        .into_iter()
        .any(|v| matches!(v, Some("rate_limit_exceeded" | "rate_limit_error")));
    let status = if says_rate_limited { 429 } else { status };
    let body = if error.r#type.is_none() && error.code.is_none() && error.param.is_none() {
        // A 5xx (or a bare message): the raw body, which may itself be JSON.
        error.message.clone()
    } else {
        serde_json::json!({ "error": {
            "message": error.message,
            "type": error.r#type,
            "param": error.param,
            "code": error.code,
        }})
        .to_string()
    };
    classify_http(status, &|_| None, &body, now)
}

/// The ready-made error type for a rate-limited function that calls async-openai:
/// [`crate::CallError`], which converts from `OpenAIError` and the limiter's [`Error`](crate::Error) and
/// classifies them. Its old `OpenAI` variant is gone: use
/// [`CallError::downcast_ref`](crate::CallError::downcast_ref).
#[deprecated(note = "use `ratelimited::CallError`: it holds and classifies OpenAIError too")]
pub type CallError = crate::CallError;
