//! The mock provider over real HTTP on loopback (feature `mock-server`).
//!
//! [`MockServer`] serves a [`MockProvider`] as an OpenAI-compatible endpoint on
//! `127.0.0.1` at a random free port, in real time:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/chat/completions` | `model`, `messages`, `max_tokens` or `max_completion_tokens`, `n` | `chat.completion` with `usage` |
//! | the same with `"stream": true` (and `stream_options.include_usage`) | | `text/event-stream`: `data: {chat.completion.chunk}` events ([`StreamPacing::default`]), the `usage` chunk when asked, `data: [DONE]` |
//! | `POST /v1/embeddings` | `model`, `input` (string, strings, token arrays), `dimensions` | embeddings `list` with `usage` |
//! | `POST /v1/messages` (Anthropic) | `model`, `max_tokens`, `system`, `messages`; `"stream": true` | a `message` with `usage: {input_tokens, output_tokens}`; streamed: `message_start`, `content_block_delta`s, `message_delta` with the output, `message_stop` |
//! | `POST /v1beta/models/{model}:generateContent` (Gemini) | `contents`, `systemInstruction`, `generationConfig.maxOutputTokens`, `candidateCount` | `candidates` with `usageMetadata` |
//! | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | the same | SSE chunks whose `usageMetadata` grows to the whole |
//!
//! The Anthropic and Gemini routes count the prompt as the text of their messages (no chat
//! framing) in the model's encoding, and answer in their own bodies and error envelopes; their
//! limits, headers and faults are the same provider's. Every answer carries the `x-ratelimit-*`
//! headers; rate-limit 429s carry `retry-after-ms` and
//! `retry-after` and OpenAI's `rate_limit_exceeded` body, exactly as [`MockProvider`] produces
//! them (the server is a thin HTTP layer over the same enforcement core). A body that is not
//! JSON, or not a valid request, is a 400 `invalid_request_error`; any other route is a 404.
//! No authentication is checked.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::other_wires::{self, Wire};
use super::stream::{self, MockStream, StreamPacing};
use super::{openai_wire, MockLimits, MockProvider, MockRequest, MockResponse};
use crate::answers::http::HttpError;

/// An OpenAI-compatible HTTP server on `127.0.0.1` enforcing a [`MockProvider`]'s limits.
///
/// It runs on the tokio runtime that started it and shuts down gracefully when dropped (or,
/// waiting for it, with [`MockServer::shutdown`]).
///
/// ```no_run
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::testing::{MockLimits, MockServer};
///
/// # async fn demo() -> std::io::Result<()> {
/// let server = MockServer::start(MockLimits::new(500, 200_000)).await?;
/// let endpoint = format!("{}/chat/completions", server.base_url());
/// // ... point an OpenAI client at `server.base_url()` ...
/// server.provider().assert_within_limits();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    provider: MockProvider,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a server enforcing `limits` with a default [`MockProvider`].
    ///
    /// Must be called inside a tokio runtime; fails only if the loopback port cannot be bound.
    pub async fn start(limits: MockLimits) -> io::Result<MockServer> {
        MockServer::serve(MockProvider::new(limits)).await
    }

    /// Starts a server in front of `provider` (configured with latency, faults, ...). The
    /// provider stays shared: faults injected into it later apply to the server too.
    pub async fn serve(provider: MockProvider) -> io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/messages", post(messages))
            .route("/v1beta/models/{call}", post(gemini))
            .fallback(not_found)
            .with_state(provider.clone());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means shut down too.
                    let _ = signal.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "mock server stopped with an error");
            }
        });
        Ok(MockServer {
            addr,
            provider,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The address it listens on (`127.0.0.1`, random port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`: what OpenAI clients take as their base
    /// URL (`OPENAI_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The full URL of `path` on this server: `url("/v1/embeddings")` is
    /// `http://127.0.0.1:PORT/v1/embeddings`.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// The provider behind the server: its admissions, rejections, stats and faults.
    pub fn provider(&self) -> &MockProvider {
        &self.provider
    }

    /// Stops accepting connections and waits until the connections in progress are done.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Signals a graceful shutdown; the server task finishes on its own.
impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn chat(State(provider): State<MockProvider>, body: Bytes) -> Response {
    let result = match openai_wire::parse_json_body(&body) {
        Ok(request) if stream::wants_stream(&request) => {
            return match provider
                .chat_stream_json(&request, StreamPacing::default())
                .await
            {
                Ok((headers, chunks)) => event_stream(&headers, chunks),
                Err(error) => answer(Err(error)),
            };
        }
        Ok(request) => provider.chat_json(&request).await,
        Err(error) => Err(error),
    };
    answer(result)
}

async fn embeddings(State(provider): State<MockProvider>, body: Bytes) -> Response {
    let result = match openai_wire::parse_json_body(&body) {
        Ok(request) => provider.embeddings_json(&request).await,
        Err(error) => Err(error),
    };
    answer(result)
}

async fn messages(State(provider): State<MockProvider>, body: Bytes) -> Response {
    let request = openai_wire::parse_json_body(&body);
    let stream = request.as_ref().is_ok_and(stream::wants_stream);
    let mock = request.and_then(|request| other_wires::parse_messages(&request));
    serve_other(&provider, Wire::Anthropic, mock, stream).await
}

async fn gemini(
    State(provider): State<MockProvider>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some((model, action)) = call.split_once(':') else {
        return not_found().await;
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" if query.as_deref().is_some_and(|q| q.contains("alt=sse")) => true,
        "streamGenerateContent" => {
            let error = openai_wire::invalid_request(
                "the mock streams streamGenerateContent only as SSE: add `?alt=sse`",
                Some("alt"),
            );
            return answer(Err(other_wires::error(Wire::Gemini, error)));
        }
        _ => return not_found().await,
    };
    let mock = openai_wire::parse_json_body(&body)
        .and_then(|request| other_wires::parse_generate(model, &request));
    serve_other(&provider, Wire::Gemini, mock, stream).await
}

/// Serves an Anthropic or Gemini request through the provider's accounting.
async fn serve_other(
    provider: &MockProvider,
    wire: Wire,
    request: Result<MockRequest, HttpError>,
    stream: bool,
) -> Response {
    let served = match request {
        Ok(request) => provider.chat(&request).await,
        Err(error) => Err(error),
    };
    match served {
        Ok(response) if stream => {
            let events = other_wires::stream(wire, &response, StreamPacing::default());
            let mut built = build(200, &response.headers, String::new());
            *built.body_mut() = stream::sse_events(events);
            built.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            built
        }
        Ok(response) => build(
            200,
            &response.headers,
            other_wires::answer(wire, &response).to_string(),
        ),
        Err(error) => answer(Err(other_wires::error(wire, error))),
    }
}

async fn not_found() -> Response {
    answer(Err(openai_wire::unknown_url()))
}

fn answer(result: Result<MockResponse, HttpError>) -> Response {
    match result {
        Ok(response) => build(200, &response.headers, response.body.to_string()),
        Err(error) => build(error.status, &error.headers, error.body),
    }
}

/// A 200 whose body is the chunks as Server-Sent Events.
fn event_stream(headers: &[(String, String)], chunks: MockStream) -> Response {
    let mut response = build(200, headers, String::new());
    *response.body_mut() = stream::sse(chunks);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn build(status: u16, headers: &[(String, String)], body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    map.insert(
        HeaderName::from_static("openai-organization"),
        HeaderValue::from_static(openai_wire::ORGANIZATION),
    );
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    response
}
