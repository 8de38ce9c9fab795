//! Real SSE over loopback: the mock server streams `chat.completion.chunk` events through
//! reqwest's `bytes_stream`, and `#[rate_limited(.., stream)]` holds the slot until the last
//! event and settles from the usage chunk.

use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::testing::{fresh_registry_with_env, MockLimits, MockProvider, MockServer};
use ratelimited::{limiter::Dimension, rate_limited, stream::RateLimitedStream, Registry, Usage};
use serde_json::{json, Value};

mod common;
use common::ApiError;

#[path = "../examples/common/sse.rs"]
mod sse;

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn chat_stream(
    client: &reqwest::Client,
    url: &str,
    request: &Value,
) -> Result<RateLimitedStream<sse::JsonEvents>, ApiError> {
    sse::send(client, url, request).await
}

/// A plain-HTTP client; reqwest still wants a TLS crypto provider installed to build one.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn request() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": true,
        "max_tokens": 40,
        "messages": [{"role": "user", "content": "Stream me a short answer."}]
    })
}

#[tokio::test]
async fn sse_through_reqwest_holds_the_slot_and_settles_from_the_usage_chunk() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "4")]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let client = client();
    let url = server.url("/v1/chat/completions");
    let limiter = Registry::current().limiter("gpt-4o-mini").unwrap().limiter;

    let mut stream = chat_stream(&client, &url, &request()).await.unwrap();
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(1));
    let mut content = String::new();
    let mut events = 0;
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        events += 1;
        if let Some(text) = event
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            content.push_str(text);
        }
    }
    assert_eq!(events, 9, "8 content chunks, then the usage chunk");
    assert_eq!(
        content.split_whitespace().count(),
        20,
        "half of max_tokens, one word a token"
    );
    let admitted = server.provider().stats();
    assert_eq!(admitted.calls, 1);
    let usage = stream.usage().expect("the usage chunk");
    assert_eq!(usage.output_tokens, 20);
    assert!(usage.input_tokens > 0);
    assert!(!stream.is_holding());
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(0));
    assert_eq!(
        stream.usage(),
        Some(Usage::new(usage.input_tokens, 20)),
        "read once, not summed"
    );
}

#[tokio::test]
async fn the_server_speaks_sse_and_sends_usage_only_when_asked() {
    let server = MockServer::start(MockLimits::new(1_000, 1_000_000))
        .await
        .unwrap();
    let client = client();
    let response = client
        .post(server.url("/v1/chat/completions"))
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response
        .headers()
        .contains_key("x-ratelimit-remaining-tokens"));
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .unwrap()
        .unwrap();
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 9, "{body}");
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    assert!(events.iter().all(|e| e.starts_with("data: ")));
    assert!(
        !body.contains("\"prompt_tokens\""),
        "no usage without include_usage"
    );
}

#[tokio::test]
async fn a_429_on_the_initial_response_comes_back_as_an_error_status_not_a_stream() {
    let server = MockServer::start(MockLimits::new(1, 1_000_000))
        .await
        .unwrap();
    let client = client();
    let send = || {
        client
            .post(server.url("/v1/chat/completions"))
            .json(&request())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["content-type"], "application/json");
}
