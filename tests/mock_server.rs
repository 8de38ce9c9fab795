//! The mock server over real HTTP on loopback, in real time. Small numbers: every test
//! finishes in well under a few seconds, and every request has a client timeout.
#![cfg(feature = "mock-server")]

use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::testing::{Fault, MockLimits, MockProvider, MockServer, RejectionKind};
use ratelimited::tokens::{count_chat, count_tokens, ChatMessage, Encoding};
use ratelimited::{Classify, Verdict};
use serde_json::{json, Value};

const MODEL: &str = "gpt-4o-mini";

fn client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider` (for the quickstart's optional real
    // endpoint); loopback is plain HTTP, but building a client still wants a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn http_error(&self) -> HttpError {
        HttpError::new(self.status, self.headers.clone(), self.text.clone())
    }
}

/// A server enforcing `limits`, and its chat-completions URL.
async fn start(limits: MockLimits) -> (MockServer, String) {
    serve(MockProvider::new(limits)).await
}

/// A server in front of `provider`, and its chat-completions URL.
async fn serve(provider: MockProvider) -> (MockServer, String) {
    let server = MockServer::serve(provider).await.unwrap();
    let url = server.url("/v1/chat/completions");
    (server, url)
}

async fn post(url: &str, body: &Value) -> Answer {
    send(client().post(url).json(body)).await
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the mock server answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

fn chat_body(text: &str, max_tokens: u64) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens
    })
}

#[tokio::test]
async fn chat_returns_usage_and_rate_limit_headers() {
    let server = MockServer::start(MockLimits::new(500, 200_000))
        .await
        .unwrap();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(server.base_url().ends_with("/v1"));
    assert!(server.addr().ip().is_loopback());
    let body = json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name three primes."}
        ],
        "max_completion_tokens": 100,
        "n": 2
    });
    let answer = post(&format!("{}/chat/completions", server.base_url()), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let prompt = count_chat(
        Encoding::O200kBase,
        &[
            ChatMessage::system("You are terse."),
            ChatMessage::user("Name three primes."),
        ],
    );
    assert_eq!(answer.body["object"], "chat.completion");
    assert_eq!(answer.body["usage"]["prompt_tokens"], prompt);
    // Half of max_tokens per choice, two choices.
    assert_eq!(answer.body["usage"]["completion_tokens"], 100);
    assert_eq!(answer.body["choices"].as_array().unwrap().len(), 2);
    assert_eq!(answer.header("x-ratelimit-limit-requests"), Some("500"));
    assert_eq!(answer.header("x-ratelimit-limit-tokens"), Some("200000"));
    assert_eq!(answer.header("x-ratelimit-remaining-requests"), Some("499"));
    let remaining: u64 = answer
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(remaining, 200_000 - (prompt + 200));
    let reset = answer.header("x-ratelimit-reset-tokens").unwrap();
    assert!(
        ratelimited::http::parse_go_duration(reset).is_some(),
        "{reset}"
    );
    assert_eq!(server.provider().stats().admitted, 1);
    server.provider().assert_within_limits();
}

#[tokio::test]
async fn over_the_limit_is_a_429_with_retry_after_ms_and_the_real_headers() {
    // 1000 tokens per second: the wait is about 1.4 s, long enough that a slow machine
    // between the two requests cannot make the second one fit.
    let (server, url) = start(MockLimits::new(1_000, 60_000)).await;
    let first = post(&url, &chat_body("Hi", 59_900)).await;
    assert_eq!(first.status, 200, "{}", first.text);

    let second = post(&url, &chat_body("Hi", 1_500)).await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert_eq!(second.body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(second.body["error"]["type"], "tokens");
    let message = second.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for gpt-4o-mini in organization org-mock on tokens per min (TPM): \
             Limit 60000, Used "
        ),
        "{message}"
    );
    let retry_ms: u64 = second.header("retry-after-ms").unwrap().parse().unwrap();
    assert!((1..=1_500).contains(&retry_ms), "{retry_ms}");
    assert_eq!(
        second.http_error().classify(),
        Verdict::RateLimited {
            retry_after: Some(Duration::from_millis(retry_ms))
        }
    );
    assert!(second.header("x-ratelimit-remaining-tokens").is_some());
    // That retrying exactly `retry-after-ms` later succeeds is tested in paused time against
    // the same enforcement core (tests/mock_provider.rs), without waiting on the wall clock.

    let rejections = server.provider().rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].kind, RejectionKind::Tokens);
    server.provider().assert_within_limits();
}

#[tokio::test]
async fn request_too_large_over_http() {
    let (_server, url) = start(MockLimits::new(100, 1_000)).await;
    let answer = post(&url, &chat_body("Hello", 5_000)).await;
    assert_eq!(answer.status, 429);
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Request too large for gpt-4o-mini"));
    assert_eq!(answer.header("retry-after-ms"), None);
    assert!(matches!(
        answer.http_error().classify(),
        Verdict::RequestTooLarge { .. }
    ));
}

#[tokio::test]
async fn embeddings_report_input_usage() {
    let server = MockServer::start(MockLimits::new(100, 100_000))
        .await
        .unwrap();
    let body = json!({
        "model": "text-embedding-3-small",
        "input": ["The quick brown fox", "jumps over the lazy dog"]
    });
    let answer = post(&format!("{}/embeddings", server.base_url()), &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let tokens = count_tokens(Encoding::Cl100kBase, "The quick brown fox")
        + count_tokens(Encoding::Cl100kBase, "jumps over the lazy dog");
    assert_eq!(answer.body["object"], "list");
    assert_eq!(answer.body["usage"]["prompt_tokens"], tokens);
    assert_eq!(answer.body["usage"]["total_tokens"], tokens);
    let data = answer.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert!(!data[0]["embedding"].as_array().unwrap().is_empty());
    let remaining: u64 = answer
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(remaining, 100_000 - tokens);
}

#[tokio::test]
async fn malformed_requests_and_unknown_routes() {
    let (server, url) = start(MockLimits::new(100, 100_000)).await;
    let bad_json = send(
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.body["error"]["type"], "invalid_request_error");

    let no_messages = post(&url, &json!({"model": MODEL})).await;
    assert_eq!(no_messages.status, 400);
    assert_eq!(no_messages.http_error().classify(), Verdict::Fatal);

    let unknown = post(&server.url("v1/completions"), &json!({})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(server.provider().stats().calls, 0);
}

#[tokio::test]
async fn faults_reach_http_clients() {
    let provider = MockProvider::new(MockLimits::new(100, 100_000)).fault(Fault::status(503, 1));
    let (server, url) = serve(provider).await;
    let failed = post(&url, &chat_body("Hi", 10)).await;
    assert_eq!(failed.status, 503);
    assert!(failed.http_error().classify().is_retryable());
    assert_eq!(post(&url, &chat_body("Hi", 10)).await.status, 200);

    server.provider().inject(Fault::InsufficientQuota);
    let quota = post(&url, &chat_body("Hi", 10)).await;
    assert_eq!(quota.status, 429);
    assert!(matches!(
        quota.http_error().classify(),
        Verdict::QuotaExhausted { .. }
    ));
}

#[tokio::test]
async fn concurrent_clients_stay_within_the_limit() {
    let provider =
        MockProvider::new(MockLimits::new(6_000, 6_000)).latency(Duration::from_millis(20));
    let (server, url) = serve(provider).await;
    let client = client();
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let request = client.post(&url).json(&chat_body("Count to three.", 300));
            tokio::spawn(send(request))
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap().status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 30, "{statuses:?}");
    assert!(ok >= 1 && limited >= 1, "{statuses:?}");
    assert_eq!(server.provider().stats().admitted, ok as u64);
    server.provider().assert_within_limits();
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let (server, url) = start(MockLimits::new(100, 100_000)).await;
    assert_eq!(post(&url, &chat_body("Hi", 10)).await.status, 200);
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("graceful shutdown finishes");
    let refused = client().post(&url).json(&chat_body("Hi", 10)).send().await;
    assert!(refused.is_err());

    // Dropping shuts down too.
    let (server, url) = start(MockLimits::new(100, 100_000)).await;
    drop(server);
    // The shutdown runs on the server's task: yield to it (bounded) until the port closes.
    let mut closed = false;
    for _ in 0..1_000 {
        if client().post(&url).json(&json!({})).send().await.is_err() {
            closed = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(closed, "the port still answers after drop");
}
