//! `integrations::reqwest_middleware::RateLimit` through a real `ClientWithMiddleware`: against
//! the mock server over loopback (real time; OpenAI, Anthropic and Gemini, JSON and SSE), and
//! in paused time against the same mock provider answering in-process as the stack's last
//! middleware, where waits are exact.

use std::time::Duration;

use http::Extensions;
use ratelimited::integrations::llm::{Routes, Unrecognised};
use ratelimited::integrations::reqwest_middleware::RateLimit;
use ratelimited::limiter::Dimension;
use ratelimited::stats::FamilyStats;
use ratelimited::testing::{
    fresh_registry_with_env, Fault, MockLimits, MockProvider, MockServer, RejectionKind,
};
use ratelimited::{Error, Registry};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde_json::{json, Value};
use tokio::time::Instant;

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest_client())
        .with(RateLimit::from_env())
        .build()
}

fn chat(max_tokens: u64) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Name three primes, briefly."}]
    })
}

/// The stats of the one family the test used.
fn family() -> FamilyStats {
    let stats = Registry::current().stats();
    assert_eq!(stats.families.len(), 1, "{:?}", stats.families);
    stats.families[0].clone()
}

fn in_use(model: &str, dimension: Dimension) -> Option<u64> {
    Registry::current()
        .limiter(model)
        .unwrap()
        .limiter
        .in_use(dimension)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_json_at_the_limit_draws_no_429() {
    // 18 requests of about 320 tokens against 6,000 TPM at headroom 0.9 (5,400): the last
    // ones wait for the refill, about 3 s, and the server never refuses one.
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "6000"),
    ]);
    let provider = MockProvider::new(MockLimits::new(600, 6_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let client = client();
    let url = server.url("/v1/chat/completions");
    let mut tasks = Vec::new();
    for _ in 0..18 {
        let (client, url) = (client.clone(), url.clone());
        let request = client.post(url).json(&chat(300));
        tasks.push(ratelimited::testing::spawn_scoped(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
        drop(client);
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["usage"]["completion_tokens"], 150);
    }
    let provider = server.provider();
    assert_eq!(provider.stats().admitted, 18);
    assert!(
        provider.rejections().is_empty(),
        "{:?}",
        provider.rejections()
    );
    provider.assert_within_limits();
    let first = provider.admissions()[0].at;
    let last = provider.admissions().last().unwrap().at;
    assert!(
        last - first > Duration::from_secs(1),
        "the last requests waited for the refill: {:?}",
        last - first
    );
}

#[tokio::test]
async fn a_429_is_waited_out_as_its_retry_after_ms_says_and_retried() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_RPM", "600")]);
    // The tokenizer is built before the storm's clock starts.
    ratelimited::tokens::encoding_for_model("gpt-4o-mini").warm();
    let provider = MockProvider::new(MockLimits::new(600, 200_000)).fault(Fault::RateLimitStorm {
        until: Duration::from_millis(400),
    });
    let server = MockServer::serve(provider).await.unwrap();
    let response = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat(20))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let provider = server.provider();
    let rejections = provider.rejections();
    assert!(!rejections.is_empty());
    assert!(rejections.iter().all(|r| r.kind == RejectionKind::Storm));
    let last_429 = rejections.last().unwrap();
    let admitted = provider.admissions()[0].at;
    let wait = last_429.retry_after.unwrap();
    // Real time: not before the server said, and not much after.
    assert!(admitted >= last_429.at + wait);
    assert!(admitted - (last_429.at + wait) < Duration::from_millis(150));
    assert!(admitted - provider.created() >= Duration::from_millis(400));
}

#[tokio::test]
async fn anthropic_json_and_sse_settle_from_their_usage() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_CLAUDE_SONNET_4_CONCURRENCY", "4")]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let client = client();
    let url = server.url("/v1/messages");
    let model = "claude-sonnet-4-5";
    let body = json!({
        "model": model,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": "Say something short."}]
    });
    let answer: Value = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["usage"]["output_tokens"], 200);
    let input = answer["usage"]["input_tokens"].as_u64().unwrap();
    // Settled to the 200 output tokens used, not the 400 reserved.
    let settled = family();
    assert_eq!(settled.reported_calls, 1);
    assert_eq!(settled.reported_output_tokens, 200);
    assert_eq!(settled.charged_tokens, input + 200);
    assert!(settled.reserved_tokens >= input + 400);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let mut response = client.post(&url).json(&streamed).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    assert_eq!(
        in_use(model, Dimension::Concurrency),
        Some(1),
        "held while the stream runs"
    );
    let mut text = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: message_stop"));
    assert_eq!(in_use(model, Dimension::Concurrency), Some(0));
    // Settled when the body ended, from `message_start`'s input and `message_delta`'s output.
    let settled = family();
    assert_eq!(settled.reported_calls, 2);
    assert_eq!(settled.reported_output_tokens, 400);
    assert_eq!(settled.charged_tokens, 2 * (input + 200));
    assert_eq!(server.provider().stats().admitted, 2);
}

#[tokio::test]
async fn gemini_json_and_sse_settle_from_their_usage_metadata() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GEMINI_2_0_FLASH_CONCURRENCY", "4")]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let client = client();
    let model = "gemini-2.0-flash";
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "Say something short."}]}],
        "generationConfig": {"maxOutputTokens": 300}
    });
    let limiter = Registry::current().limiter(model).unwrap().limiter;
    let answer: Value = client
        .post(server.url(&format!("/v1beta/models/{model}:generateContent")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prompt = answer["usageMetadata"]["promptTokenCount"]
        .as_u64()
        .unwrap();
    assert_eq!(answer["usageMetadata"]["candidatesTokenCount"], 150);
    let settled = family();
    assert_eq!(settled.reported_output_tokens, 150);
    assert_eq!(settled.reported_input_tokens, prompt);
    assert!(settled.reserved_tokens >= prompt + 300);

    let mut response = client
        .post(server.url(&format!(
            "/v1beta/models/{model}:streamGenerateContent?alt=sse"
        )))
        .json(&body)
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("usageMetadata"));
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(1));
    while response.chunk().await.unwrap().is_some() {}
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(0));
    let settled = family();
    assert_eq!(settled.reported_calls, 2);
    assert_eq!(settled.reported_output_tokens, 300);
    assert_eq!(settled.reported_input_tokens, 2 * prompt);
}

#[tokio::test]
async fn openai_sse_holds_the_slot_until_the_usage_chunk() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "4")]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000)).completion_fraction(0.5);
    let server = MockServer::serve(provider).await.unwrap();
    let mut body = chat(40);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let mut response = client()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        in_use("gpt-4o-mini", Dimension::Concurrency),
        Some(1),
        "held from the response's start"
    );
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(in_use("gpt-4o-mini", Dimension::Concurrency), Some(0));
}

#[tokio::test]
async fn other_requests_pass_untouched_unless_limited_as_one_request() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_RPM", "600")]);
    let server = MockServer::start(MockLimits::new(600, 200_000))
        .await
        .unwrap();
    let response = client().get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(in_use("gpt-4o-mini", Dimension::RequestsPerMinute), Some(0));

    let counted = ClientBuilder::new(reqwest_client())
        .with(RateLimit::new(
            Routes::new().unrecognised(Unrecognised::limit_as("gpt-4o-mini")),
        ))
        .build();
    let response = counted.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404, "a 404 is not retried");
    assert_eq!(in_use("gpt-4o-mini", Dimension::RequestsPerMinute), Some(1));
    assert_eq!(in_use("gpt-4o-mini", Dimension::TokensPerMinute), Some(0));
}

#[tokio::test]
async fn a_request_too_large_for_the_limit_fails_with_the_limiters_error() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_TPM", "1000")]);
    let server = MockServer::start(MockLimits::new(600, 200_000))
        .await
        .unwrap();
    let error = client()
        .post(server.url("/v1/chat/completions"))
        .json(&chat(5_000))
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else {
        panic!("expected the limiter's error, got {error:?}");
    };
    assert!(
        matches!(
            error.downcast_ref::<Error>(),
            Some(Error::RequestTooLarge { .. })
        ),
        "{error:?}"
    );
    assert_eq!(server.provider().stats().calls, 0, "nothing was sent");
}

/// The mock provider answering in-process, as the stack's last middleware: paused time.
struct InProcess(MockProvider);

#[async_trait::async_trait]
impl Middleware for InProcess {
    async fn handle(
        &self,
        req: reqwest::Request,
        _: &mut Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let body: Value = serde_json::from_slice(req.body().unwrap().as_bytes().unwrap()).unwrap();
        let (status, headers, body) = match self.0.chat_json(&body).await {
            Ok(answer) => (200, answer.headers, answer.body.to_string()),
            Err(error) => (error.status, error.headers, error.body),
        };
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(name, value);
        }
        Ok(response.body(body).unwrap().into())
    }
}

#[tokio::test(start_paused = true)]
async fn in_paused_time_the_retry_comes_exactly_at_retry_after_ms() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_RPM", "600")]);
    let provider = MockProvider::new(MockLimits::new(600, 200_000)).fault(Fault::RateLimitStorm {
        until: Duration::from_millis(840),
    });
    let client = ClientBuilder::new(reqwest_client())
        .with(RateLimit::from_env())
        .with(InProcess(provider.clone()))
        .build();
    let start = Instant::now();
    let response = client
        .post("http://mock.invalid/v1/chat/completions")
        .json(&chat(20))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(start.elapsed(), Duration::from_millis(840));
    let rejections = provider.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].retry_after, Some(Duration::from_millis(840)));
    assert_eq!(
        provider.admissions()[0].at - start,
        Duration::from_millis(840)
    );
}

#[tokio::test(start_paused = true)]
async fn in_paused_time_the_refund_lets_the_next_waiter_go_when_the_answer_settles() {
    // Anthropic charges output as it is produced: a reservation of 400 output tokens that used
    // 100 gives 300 back, and a waiter that needs them goes at that instant, not after the
    // refill (18 tokens/s against OTPM 1,200 at headroom 0.9).
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_CLAUDE_SONNET_4_OTPM", "1200"),
        ("RATE_LIMITED_CLAUDE_SONNET_4_ITPM", "1000000"),
        ("RATE_LIMITED_CLAUDE_SONNET_4_RPM", "1000"),
    ]);
    let provider = MockProvider::new(MockLimits::new(1_000, 1_000_000))
        .completion_fraction(0.25)
        .latency(Duration::from_secs(2));
    let client = ClientBuilder::new(reqwest_client())
        .with(RateLimit::from_env())
        .with(InProcess(provider.clone()))
        .build();
    let start = Instant::now();
    let send = |client: ClientWithMiddleware| async move {
        // The in-process mock speaks OpenAI's format; the URL makes it an Anthropic request.
        client
            .post("http://mock.invalid/v1/messages")
            .json(&json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 600,
                "messages": [{"role": "user", "content": "Say something short."}]
            }))
            .send()
            .await
    };
    let first = ratelimited::testing::spawn_scoped(send(client.clone()));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let second = ratelimited::testing::spawn_scoped(send(client.clone()));
    assert_eq!(first.await.unwrap().unwrap().status().as_u16(), 200);
    assert_eq!(second.await.unwrap().unwrap().status().as_u16(), 200);
    let admissions = provider.admissions();
    assert_eq!(admissions[0].at - start, Duration::ZERO);
    // Without the refund: 120 more tokens at 18 per second, 6.67 s.
    assert_eq!(admissions[1].at - start, Duration::from_secs(2));
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}
