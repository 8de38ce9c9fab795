//! `integrations::tower::RateLimitLayer` over a hyper client, against the mock server over
//! loopback (real time): the same limiting as the reqwest middleware, through `tower`'s
//! `Service`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ratelimited::integrations::tower::{RateLimitLayer, RateLimitService};
use ratelimited::limiter::Dimension;
use ratelimited::testing::{fresh_registry_with_env, Fault, MockLimits, MockProvider, MockServer};
use ratelimited::Registry;
use serde_json::{json, Value};
use tower_layer::Layer;
use tower_service::Service;

type Limited = RateLimitService<Client<HttpConnector, Full<Bytes>>>;

fn client() -> Limited {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    RateLimitLayer::from_env().layer(client)
}

async fn post(client: &mut Limited, url: &str, body: &Value) -> (u16, String, Bytes) {
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::from(body.to_string()))
        .unwrap();
    std::future::poll_fn(|cx| client.poll_ready(cx))
        .await
        .unwrap();
    let response = client.call(request).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, bytes)
}

fn chat(max_tokens: u64) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Name three primes, briefly."}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_json_at_the_limit_draws_no_429_and_a_429_is_retried() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "6000"),
    ]);
    ratelimited::tokens::encoding_for_model("gpt-4o-mini").warm();
    let provider = MockProvider::new(MockLimits::new(600, 6_000))
        .completion_fraction(0.5)
        .fault(Fault::RateLimitStorm {
            until: Duration::from_millis(300),
        });
    let server = MockServer::serve(provider).await.unwrap();
    let url = server.url("/v1/chat/completions");
    let mut tasks = Vec::new();
    for _ in 0..18 {
        let (mut client, url) = (client(), url.clone());
        tasks.push(ratelimited::testing::spawn_scoped(async move {
            post(&mut client, &url, &chat(300)).await
        }));
    }
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["usage"]["completion_tokens"], 150);
    }
    let provider = server.provider();
    assert_eq!(provider.stats().admitted, 18);
    let rejections = provider.rejections();
    assert!(!rejections.is_empty(), "the storm answered 429");
    assert!(
        rejections
            .iter()
            .all(|r| r.kind == ratelimited::testing::RejectionKind::Storm),
        "no 429 but the storm's: {rejections:?}"
    );
    let first_429 = rejections[0].at;
    let admitted = provider.admissions()[0].at;
    assert!(admitted >= first_429 + rejections[0].retry_after.unwrap());
    provider.assert_within_limits();
}

#[tokio::test]
async fn anthropic_sse_holds_the_slot_until_its_body_ends() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_CLAUDE_SONNET_4_CONCURRENCY", "4")]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let mut client = client();
    let request = http::Request::post(server.url("/v1/messages"))
        .body(Full::from(
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 400,
                "stream": true,
                "messages": [{"role": "user", "content": "Say something short."}]
            })
            .to_string(),
        ))
        .unwrap();
    let response = client.call(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let limiter = Registry::current()
        .limiter("claude-sonnet-4-5")
        .unwrap()
        .limiter;
    assert!(response.body().is_holding());
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(1));
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("event: message_delta"));
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(0));
    let stats = Registry::current().stats();
    assert_eq!(stats.families[0].reported_output_tokens, 200);
}

#[tokio::test]
async fn gemini_json_settles_and_other_requests_pass_untouched() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GEMINI_2_0_FLASH_RPM", "100")]);
    let server = MockServer::start(MockLimits::new(1_000, 1_000_000))
        .await
        .unwrap();
    let mut client = client();
    let (status, _, body) = post(
        &mut client,
        &server.url("/v1beta/models/gemini-2.0-flash:generateContent"),
        &json!({"contents": [{"parts": [{"text": "Hello"}]}],
                "generationConfig": {"maxOutputTokens": 64}}),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let stats = Registry::current().stats();
    assert_eq!(stats.families.len(), 1);
    assert_eq!(
        stats.families[0].reported_output_tokens,
        body["usageMetadata"]["candidatesTokenCount"]
            .as_u64()
            .unwrap()
    );

    let (status, _, _) = post(&mut client, &server.url("/v1/models"), &json!({})).await;
    assert_eq!(status, 404);
    let stats = Registry::current().stats();
    assert_eq!(stats.families[0].issued, 1, "the 404 was never limited");
}
