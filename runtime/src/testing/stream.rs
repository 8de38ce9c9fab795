//! Streaming in the mock: [`MockStream`], chunks delivered over tokio's clock, and
//! [`MockProvider::chat_stream`], an admitted chat completion streamed OpenAI's way (content
//! deltas, then a final chunk with `usage`). The HTTP server writes the same chunks as SSE.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use serde_json::{json, Value};
use std::future::Future;
use tokio::time::Sleep;

use super::{MockProvider, MockRequest, MockResponse};
use crate::answers::http::HttpError;

/// How an admitted completion is streamed: its output split into `chunks` content chunks, one
/// every `every`, so the stream lasts `chunks × every` after the response starts; the usage
/// chunk follows the last one at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamPacing {
    /// Content chunks (at least 1).
    pub chunks: u32,
    /// The wait before each content chunk.
    pub every: Duration,
}

impl StreamPacing {
    /// `chunks` content chunks, one every `every`.
    pub fn new(chunks: u32, every: Duration) -> Self {
        StreamPacing { chunks, every }
    }
}

/// 8 chunks, one every 20 ms: what the HTTP mock server streams.
impl Default for StreamPacing {
    fn default() -> Self {
        StreamPacing::new(8, Duration::from_millis(20))
    }
}

/// One chunk of a [`MockStream`] and the wait before it.
type Scripted = (Duration, Result<Value, HttpError>);

/// A stream of JSON chunks, each delivered after its own wait on tokio's clock (virtual under
/// `start_paused`). Build one from a script of any provider's events with
/// [`MockStream::scripted`], or get OpenAI's from [`MockProvider::chat_stream`].
pub struct MockStream {
    events: VecDeque<Scripted>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl MockStream {
    /// A stream that yields each item after waiting its duration (counted from the previous
    /// item).
    pub fn scripted(
        events: impl IntoIterator<Item = (Duration, Result<Value, HttpError>)>,
    ) -> Self {
        MockStream {
            events: events.into_iter().collect(),
            sleep: None,
        }
    }

    /// OpenAI's chunks for an admitted completion: `chat.completion.chunk`s whose content has
    /// one word per completion token, then (when `include_usage`) the `usage` chunk.
    pub fn openai(response: &MockResponse, pacing: StreamPacing, include_usage: bool) -> Self {
        let chunks = u64::from(pacing.chunks.max(1));
        let total = response.completion_tokens;
        let id = response.body.get("id").cloned().unwrap_or(Value::Null);
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "model": response.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                "usage": null
            })
        };
        let mut events = Vec::new();
        for index in 0..chunks {
            // Token counts spread evenly, the remainder on the first chunks.
            let tokens = total / chunks + u64::from(index < total % chunks);
            let mut delta = json!({"content": "tok ".repeat(tokens as usize)});
            if index == 0 {
                delta["role"] = json!("assistant");
            }
            let finish = (index + 1 == chunks).then_some("stop");
            events.push((pacing.every, Ok(chunk(delta, finish))));
        }
        if include_usage {
            let usage = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "model": response.model,
                "choices": [],
                "usage": {
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": total,
                    "total_tokens": response.prompt_tokens.saturating_add(total)
                }
            });
            events.push((Duration::ZERO, Ok(usage)));
        }
        MockStream::scripted(events)
    }

    /// Ends the stream with `error` in place of everything after the first `chunks` chunks
    /// (a connection lost mid-stream).
    pub fn fail_after(mut self, chunks: usize, error: HttpError) -> Self {
        self.events.truncate(chunks);
        self.events.push_back((Duration::ZERO, Err(error)));
        self
    }

    /// Chunks not yet delivered.
    pub fn remaining(&self) -> usize {
        self.events.len()
    }
}

impl Stream for MockStream {
    type Item = Result<Value, HttpError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some((wait, _)) = this.events.front() else {
            return Poll::Ready(None);
        };
        if !wait.is_zero() {
            let wait = *wait;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        Poll::Ready(this.events.pop_front().map(|(_, item)| item))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.events.len(), Some(self.events.len()))
    }
}

impl fmt::Debug for MockStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockStream")
            .field("remaining", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl MockProvider {
    /// Serves one chat completion as a stream: admitted (or refused, before any chunk) exactly
    /// as [`MockProvider::chat`], then its output as OpenAI's chunks over `pacing`, ending with
    /// the `usage` chunk.
    pub async fn chat_stream(
        &self,
        request: &MockRequest,
        pacing: StreamPacing,
    ) -> Result<MockStream, HttpError> {
        let response = self.chat(request).await?;
        Ok(MockStream::openai(&response, pacing, true))
    }

    /// [`MockProvider::chat_json`] streamed: the `usage` chunk comes only when the request
    /// says `"stream_options": {"include_usage": true}`, as OpenAI does. Also returns the
    /// response headers (`x-ratelimit-*`), which the HTTP server sends before the first chunk.
    pub async fn chat_stream_json(
        &self,
        request: &Value,
        pacing: StreamPacing,
    ) -> Result<(Vec<(String, String)>, MockStream), HttpError> {
        let response = self.chat_json(request).await?;
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let stream = MockStream::openai(&response, pacing, include_usage);
        Ok((response.headers, stream))
    }
}

/// Whether a chat request asks for a stream (`"stream": true`).
#[cfg(feature = "mock-server")]
pub(crate) fn wants_stream(request: &Value) -> bool {
    request.get("stream").and_then(Value::as_bool) == Some(true)
}

/// A mock stream as Server-Sent Events: `data: {chunk}\n\n` per chunk, `data: [DONE]\n\n` at
/// the end; an error chunk is written as OpenAI's error envelope and ends the stream.
#[cfg(feature = "mock-server")]
pub(crate) fn sse(stream: MockStream) -> axum::body::Body {
    axum::body::Body::from_stream(SseBody {
        stream,
        done: false,
        openai: true,
    })
}

/// A mock stream as Anthropic's or Gemini's Server-Sent Events: `event: {type}` before each
/// chunk that has a `type` (Anthropic's), and no `[DONE]` marker.
#[cfg(feature = "mock-server")]
pub(crate) fn sse_events(stream: MockStream) -> axum::body::Body {
    axum::body::Body::from_stream(SseBody {
        stream,
        done: false,
        openai: false,
    })
}

#[cfg(feature = "mock-server")]
struct SseBody {
    stream: MockStream,
    done: bool,
    /// OpenAI's format: a closing `data: [DONE]`.
    openai: bool,
}

#[cfg(feature = "mock-server")]
impl Stream for SseBody {
    type Item = Result<axum::body::Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let event = match ready!(Pin::new(&mut this.stream).poll_next(cx)) {
            Some(Ok(chunk)) => match chunk.get("type").and_then(Value::as_str) {
                Some(kind) if !this.openai => format!("event: {kind}\ndata: {chunk}\n\n"),
                _ => format!("data: {chunk}\n\n"),
            },
            Some(Err(error)) => {
                this.done = true;
                format!("data: {}\n\n", error.body)
            }
            None if this.openai => {
                this.done = true;
                "data: [DONE]\n\n".to_owned()
            }
            None => return Poll::Ready(None),
        };
        Poll::Ready(Some(Ok(event.into())))
    }
}
