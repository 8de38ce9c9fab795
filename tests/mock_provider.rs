//! The in-process mock provider, in paused tokio time: exact bucket arithmetic, OpenAI-shaped
//! 429s, fault modes and the token-bucket checker.

use std::sync::Arc;
use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::testing::{
    Admission, Fault, MockLimits, MockProvider, MockRequest, MockResponse, RejectionKind,
};
use ratelimited::tokens::{count_chat, count_tokens, ChatMessage, Encoding};
use ratelimited::{
    limiter::{Cost, Dimension},
    Classify, Limiter, OutputBudget, Quota, ReportUsage, Usage, Verdict,
};
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

const MODEL: &str = "gpt-4o-mini";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn error_json(err: &HttpError) -> Value {
    serde_json::from_str(&err.body).expect("error bodies are JSON")
}

/// `prompt` tokens and no output reservation.
fn prompt(tokens: u64) -> MockRequest {
    MockRequest::new(MODEL, tokens).max_tokens(0)
}

#[tokio::test(start_paused = true)]
async fn success_reports_usage_and_rate_limit_headers() {
    let provider = MockProvider::new(MockLimits::new(500, 30_000)).completion_fraction(0.25);
    let request = MockRequest::new(MODEL, 1_000).max_tokens(200).n(2);
    let response = provider.chat(&request).await.unwrap();

    // Charge 1000 + 2 × 200; each choice completes 50 of its 200.
    assert_eq!(response.charged_tokens, 1_400);
    assert_eq!(response.usage(), Some(Usage::new(1_000, 100)));
    assert_eq!(response.body.usage(), Some(Usage::new(1_000, 100)));
    assert_eq!(response.body["usage"]["total_tokens"], 1_100);
    assert_eq!(response.body["object"], "chat.completion");
    assert_eq!(response.body["model"], MODEL);
    assert_eq!(response.body["choices"].as_array().unwrap().len(), 2);

    let header = |name| response.header(name);
    assert_eq!(header("x-ratelimit-limit-requests"), Some("500"));
    assert_eq!(header("x-ratelimit-limit-tokens"), Some("30000"));
    assert_eq!(header("x-ratelimit-remaining-requests"), Some("499"));
    assert_eq!(header("x-ratelimit-remaining-tokens"), Some("28600"));
    // One request refills at 500/min in 120 ms; 1400 tokens at 500/s in 2.8 s.
    assert_eq!(header("x-ratelimit-reset-requests"), Some("120ms"));
    assert_eq!(header("x-ratelimit-reset-tokens"), Some("2.8s"));
    let parsed = response.rate_limit_headers();
    assert_eq!(parsed.remaining_tokens, Some(28_600));
    assert_eq!(parsed.reset_tokens, Some(ms(2_800)));

    let stats = provider.stats();
    assert_eq!((stats.calls, stats.admitted, stats.rate_limited), (1, 1, 0));
    assert_eq!(
        (
            stats.admitted_tokens,
            stats.prompt_tokens,
            stats.completion_tokens
        ),
        (1_400, 1_000, 100)
    );
}

/// Asserts that `request` is refused now with `retry-after-ms: {wait_ms}`, refused again one
/// millisecond before that wait is over (with 1 ms left), and admitted exactly at its end.
async fn admitted_exactly_after(
    provider: &MockProvider,
    request: &MockRequest,
    wait_ms: u64,
) -> MockResponse {
    let err = provider.chat(request).await.unwrap_err();
    assert_eq!(
        err.header("retry-after-ms"),
        Some(wait_ms.to_string().as_str())
    );
    sleep(ms(wait_ms - 1)).await;
    let err = provider.chat(request).await.unwrap_err();
    assert_eq!(err.header("retry-after-ms"), Some("1"));
    sleep(ms(1)).await;
    provider.chat(request).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn buckets_refill_continuously_and_exactly() {
    let t0 = Instant::now();
    // 100 tokens per second.
    let provider = MockProvider::new(MockLimits::new(10_000, 6_000));
    provider.chat(&prompt(6_000)).await.unwrap();

    let ok = admitted_exactly_after(&provider, &prompt(100), 1_000).await;
    assert_eq!(ok.header("x-ratelimit-remaining-tokens"), Some("0"));
    assert_eq!(ok.header("x-ratelimit-reset-tokens"), Some("1m0s"));

    // Half a minute refills exactly half the bucket.
    sleep(secs(30)).await;
    provider.chat(&prompt(3_000)).await.unwrap();
    let err = provider.chat(&prompt(1)).await.unwrap_err();
    assert_eq!(err.header("retry-after-ms"), Some("10"));
    assert_eq!(
        provider
            .admissions()
            .iter()
            .map(|a| (a.at - t0, a.tokens))
            .collect::<Vec<_>>(),
        [(secs(0), 6_000), (secs(1), 100), (secs(31), 3_000)]
    );
    provider.assert_within_limits();
}

#[tokio::test(start_paused = true)]
async fn retry_after_rounds_up_to_the_millisecond() {
    // One token refills in 60 s / 7000 = 8.571.. ms: the header says 9, and 8 is too early.
    let provider = MockProvider::new(MockLimits::new(10_000, 7_000));
    provider.chat(&prompt(7_000)).await.unwrap();
    admitted_exactly_after(&provider, &prompt(1), 9).await;
}

#[tokio::test(start_paused = true)]
async fn rate_limit_429_is_openai_shaped_and_retrying_when_told_succeeds() {
    let t0 = Instant::now();
    let provider = MockProvider::new(MockLimits::new(100, 10_000));
    provider
        .chat(&MockRequest::new(MODEL, 7_000).max_tokens(1_000).n(2))
        .await
        .unwrap();

    let request = MockRequest::new(MODEL, 2_000).max_tokens(500);
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.status, 429);
    let body = error_json(&err);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(body["error"]["param"], Value::Null);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for gpt-4o-mini in organization org-mock on tokens per min \
             (TPM): Limit 10000, Used 9000, Requested 2500. Please try again in 9s."
        ),
        "{message}"
    );
    // 1500 tokens short at 10000/min: 9 s.
    assert_eq!(err.header("retry-after-ms"), Some("9000"));
    assert_eq!(err.header("retry-after"), Some("9"));
    assert_eq!(err.header("x-ratelimit-remaining-tokens"), Some("1000"));
    // The failed request counted toward RPM: 100 - 1 admitted - 1 failed.
    assert_eq!(err.header("x-ratelimit-remaining-requests"), Some("98"));
    let verdict = err.classify();
    assert_eq!(
        verdict,
        Verdict::RateLimited {
            retry_after: Some(secs(9))
        }
    );

    sleep(verdict.retry_after().unwrap()).await;
    let ok = provider.chat(&request).await.unwrap();
    assert_eq!(ok.admitted_at - t0, secs(9));

    let rejections = provider.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].kind, RejectionKind::Tokens);
    assert_eq!(rejections[0].tokens, 2_500);
    assert_eq!(rejections[0].retry_after, Some(secs(9)));
    assert_eq!(rejections[0].at, t0);
    provider.assert_within_limits();
}

#[tokio::test(start_paused = true)]
async fn requests_bucket_and_failed_requests_count_toward_rpm() {
    let t0 = Instant::now();
    let provider = MockProvider::new(MockLimits::new(3, 1_000_000));
    for _ in 0..3 {
        provider.chat(&prompt(10)).await.unwrap();
    }
    let err = provider.chat(&prompt(10)).await.unwrap_err();
    let body = error_json(&err);
    assert_eq!(body["error"]["type"], "requests");
    assert!(body["error"]["message"].as_str().unwrap().contains(
        "on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
    ));
    assert_eq!(err.header("retry-after-ms"), Some("20000"));
    assert_eq!(provider.rejections()[0].kind, RejectionKind::Requests);
    sleep(secs(20)).await;
    let ok = provider.chat(&prompt(10)).await.unwrap();
    assert_eq!(ok.admitted_at - t0, secs(20));

    // A 429 on tokens still takes a request, unless told otherwise.
    for count in [true, false] {
        let provider = MockProvider::new(MockLimits::new(3, 100)).count_failed_requests(count);
        provider.chat(&prompt(100)).await.unwrap();
        let err = provider.chat(&prompt(1)).await.unwrap_err();
        let expected = if count { "1" } else { "2" };
        assert_eq!(err.header("x-ratelimit-remaining-requests"), Some(expected));
        // One token at 100/min: 600 ms.
        assert_eq!(err.header("retry-after-ms"), Some("600"));
    }
}

#[tokio::test(start_paused = true)]
async fn hammering_cannot_lock_a_client_out() {
    // Failed requests drain the requests bucket but never below empty.
    let t0 = Instant::now();
    let provider = MockProvider::new(MockLimits::new(2, 1_000_000));
    provider.chat(&prompt(1)).await.unwrap();
    provider.chat(&prompt(1)).await.unwrap();
    for _ in 0..50 {
        let err = provider.chat(&prompt(1)).await.unwrap_err();
        assert_eq!(err.header("retry-after-ms"), Some("30000"));
    }
    sleep(secs(30)).await;
    let ok = provider.chat(&prompt(1)).await.unwrap();
    assert_eq!(ok.admitted_at - t0, secs(30));
}

#[tokio::test(start_paused = true)]
async fn request_too_large_fails_with_no_retry_hint() {
    let provider = MockProvider::new(MockLimits::new(100, 1_000));
    let err = provider
        .chat(&MockRequest::new(MODEL, 900).max_tokens(101))
        .await
        .unwrap_err();
    assert_eq!(err.status, 429);
    let body = error_json(&err);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "tokens");
    assert!(body["error"]["message"].as_str().unwrap().starts_with(
        "Request too large for gpt-4o-mini in organization org-mock on tokens per min (TPM): \
         Limit 1000, Requested 1001."
    ));
    assert_eq!(err.header("retry-after-ms"), None);
    assert!(matches!(err.classify(), Verdict::RequestTooLarge { .. }));
    assert_eq!(provider.rejections()[0].kind, RejectionKind::ChargeAboveTpm);
    assert_eq!(provider.rejections()[0].retry_after, None);
    assert!(provider.admissions().is_empty());
    // Exactly the limit fits.
    provider
        .chat(&MockRequest::new(MODEL, 900).max_tokens(100))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn rate_limit_storm_answers_429_until_it_ends() {
    let t0 = Instant::now();
    let provider = MockProvider::new(MockLimits::new(100, 10_000))
        .fault(Fault::RateLimitStorm { until: secs(5) });
    let err = provider.chat(&prompt(10)).await.unwrap_err();
    assert_eq!(err.status, 429);
    assert_eq!(error_json(&err)["error"]["code"], "rate_limit_exceeded");
    assert_eq!(err.header("retry-after-ms"), Some("5000"));
    assert_eq!(err.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(
        err.classify(),
        Verdict::RateLimited {
            retry_after: Some(secs(5))
        }
    );
    sleep(ms(1_500)).await;
    let err = provider.chat(&prompt(10)).await.unwrap_err();
    assert_eq!(err.header("retry-after-ms"), Some("3500"));
    sleep(ms(3_500)).await;
    let ok = provider.chat(&prompt(10)).await.unwrap();
    assert_eq!(ok.admitted_at - t0, secs(5));
    let kinds: Vec<_> = provider.rejections().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [RejectionKind::Storm, RejectionKind::Storm]);
    // The storm touched no bucket.
    assert_eq!(ok.header("x-ratelimit-remaining-requests"), Some("99"));
    assert_eq!(provider.stats().rate_limited, 2);
}

#[tokio::test(start_paused = true)]
async fn insufficient_quota_is_never_retryable() {
    let provider = MockProvider::new(MockLimits::new(100, 10_000)).fault(Fault::InsufficientQuota);
    for _ in 0..3 {
        let err = provider.chat(&prompt(10)).await.unwrap_err();
        assert_eq!(err.status, 429);
        let body = error_json(&err);
        assert_eq!(body["error"]["code"], "insufficient_quota");
        assert_eq!(body["error"]["type"], "insufficient_quota");
        let verdict = err.classify();
        assert!(matches!(verdict, Verdict::QuotaExhausted { .. }));
        assert!(!verdict.is_retryable());
    }
    let stats = provider.stats();
    assert_eq!((stats.calls, stats.faults, stats.admitted), (3, 3, 0));
    assert!(provider.rejections().is_empty());
    provider.clear_faults();
    provider.chat(&prompt(10)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn status_faults_are_transient_and_run_out() {
    for code in [500u16, 503, 529] {
        let provider =
            MockProvider::new(MockLimits::new(100, 10_000)).fault(Fault::status(code, 2));
        for _ in 0..2 {
            let err = provider.chat(&prompt(10)).await.unwrap_err();
            assert_eq!(err.status, code);
            assert_eq!(err.classify(), Verdict::Transient { retry_after: None });
            let body = error_json(&err);
            if code == 529 {
                assert_eq!(body["error"]["type"], "overloaded_error");
            } else {
                assert_eq!(body["error"]["type"], "server_error");
            }
        }
        let ok = provider.chat(&prompt(10)).await.unwrap();
        // Faults never touched the buckets.
        assert_eq!(ok.header("x-ratelimit-remaining-requests"), Some("99"));
        assert_eq!(provider.stats().faults, 2);
    }
}

#[tokio::test(start_paused = true)]
async fn timeouts_hang_then_fail_transiently() {
    let t0 = Instant::now();
    let provider =
        MockProvider::new(MockLimits::new(100, 10_000)).fault(Fault::timeout(secs(30), 1));
    let err = provider.chat(&prompt(10)).await.unwrap_err();
    assert_eq!(t0.elapsed(), secs(30));
    assert_eq!(err.status, 408);
    assert!(err.classify().is_retryable());
    let ok = provider.chat(&prompt(10)).await.unwrap();
    assert_eq!(ok.admitted_at - t0, secs(30));
    assert_eq!(t0.elapsed(), secs(30));
}

#[tokio::test(start_paused = true)]
async fn faults_apply_in_order_and_can_be_injected_later() {
    let provider = MockProvider::new(MockLimits::new(100, 10_000))
        .fault(Fault::status(500, 1))
        .fault(Fault::status(503, 1));
    assert_eq!(provider.chat(&prompt(1)).await.unwrap_err().status, 500);
    assert_eq!(provider.chat(&prompt(1)).await.unwrap_err().status, 503);
    provider.chat(&prompt(1)).await.unwrap();
    let clone = provider.clone();
    clone.inject(Fault::status(502, 1));
    assert_eq!(provider.chat(&prompt(1)).await.unwrap_err().status, 502);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_responses_not_admissions() {
    let t0 = Instant::now();
    let provider = MockProvider::new(MockLimits::new(100, 10_000)).latency(ms(250));
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.chat(&prompt(10)).await })
        })
        .collect();
    for call in calls {
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.admitted_at, t0);
    }
    // Concurrent, not serialized.
    assert_eq!(t0.elapsed(), ms(250));
    // 429s are not delayed.
    let provider = MockProvider::new(MockLimits::new(1, 10_000)).latency(ms(250));
    provider.chat(&prompt(1)).await.unwrap();
    let before = Instant::now();
    provider.chat(&prompt(1)).await.unwrap_err();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[test]
fn checker_catches_violations_and_passes_legal_bursts() {
    let t0 = Instant::now();
    let at = |ms_: u64, tokens| Admission::new(t0 + ms(ms_), tokens);
    let limits = MockLimits::new(2, 600); // 10 tokens/s, one request per 30 s

    // A full bucket, then a full refill 60 s later: 1200 tokens in a closed 60 s window, which
    // a naive sliding-window check would flag, but a token bucket allows.
    assert_eq!(limits.check(&[at(0, 600), at(60_000, 600)]), Ok(()));
    // The bucket's exact edge: 600 now, then 10 per second.
    let edge: Vec<_> = std::iter::once(at(0, 600))
        .chain((1..=30).map(|s| at(s * 1_000, 10)))
        .collect();
    assert_eq!(
        MockLimits::new(100, 600).check(&edge),
        Ok(()),
        "exactly at the bound"
    );

    // One token more than refilled.
    let violation = limits.check(&[at(0, 600), at(1_000, 11)]).unwrap_err();
    assert_eq!(violation.dimension, Dimension::TokensPerMinute);
    assert_eq!((violation.admitted, violation.allowed), (611, 610));
    assert_eq!((violation.from, violation.to), (t0, t0 + secs(1)));

    // The violating interval need not start at the first admission.
    let late = [at(0, 100), at(90_000, 600), at(90_500, 6)];
    let violation = limits.check(&late).unwrap_err();
    assert_eq!(violation.from, t0 + secs(90));
    assert_eq!((violation.admitted, violation.allowed), (606, 605));

    // Requests: capacity 2, one more every 30 s; unsorted input is fine.
    let requests = [at(29_999, 0), at(0, 0), at(0, 0)];
    let violation = limits.check(&requests).unwrap_err();
    assert_eq!(violation.dimension, Dimension::RequestsPerMinute);
    assert_eq!((violation.admitted, violation.allowed), (3, 2));
    assert_eq!(limits.check(&[at(0, 0), at(0, 0), at(30_000, 0)]), Ok(()));
    assert!(violation.to_string().contains("3 requests"), "{violation}");
}

#[tokio::test(start_paused = true)]
async fn concurrent_clients_retrying_as_told_never_exceed_the_limit() {
    let t0 = Instant::now();
    let limits = MockLimits::new(60, 10_000);
    let provider = MockProvider::new(limits);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let request = MockRequest::new(MODEL, 500).max_tokens(500);
                for _attempt in 0..200 {
                    match provider.chat(&request).await {
                        Ok(response) => return response,
                        Err(err) => sleep(err.classify().retry_after().unwrap()).await,
                    }
                }
                panic!("not admitted after 200 attempts");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    provider.assert_within_limits();
    let stats = provider.stats();
    assert_eq!(stats.admitted, 100);
    assert_eq!(stats.admitted_tokens, 100_000);
    assert!(stats.rate_limited > 0);
    // 10 at once, then 90 000 tokens at 10 000 per minute.
    assert_eq!(t0.elapsed(), secs(9 * 60));
}

/// Drives 60 concurrent calls through our own limiter into the mock; returns the provider.
async fn through_our_limiter(provider: MockProvider, settle: bool) -> MockProvider {
    let limiter = Limiter::new(Quota::from(provider.limits()).headroom(0.9));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let provider = provider.clone();
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let request = MockRequest::new(MODEL, 300 + i * 7).max_tokens(400);
                let reservation = limiter
                    .acquire(Cost::request(request.prompt_tokens, 400))
                    .await
                    .unwrap();
                let result = provider.chat(&request).await;
                match &result {
                    Ok(response) if settle => reservation.settle(response.usage().unwrap()),
                    _ => reservation.keep(),
                }
                result.is_ok()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    provider.assert_within_limits();
    provider
}

#[tokio::test(start_paused = true)]
async fn our_limiter_keeps_the_mock_free_of_429s() {
    let limits = MockLimits::new(100, 20_000);

    // Keeping the reservation matches the default (OpenAI: no refund).
    let start = Instant::now();
    let provider = through_our_limiter(MockProvider::new(limits), false).await;
    assert!(provider.rejections().is_empty());
    assert!(start.elapsed() < secs(5 * 60));

    // Settling to the usage matches a provider that refunds the unused output.
    let provider = MockProvider::new(limits).refund_unused(true);
    let provider = through_our_limiter(provider, true).await;
    assert!(provider.rejections().is_empty());
    let admission = provider.admissions()[0];
    assert_eq!(
        admission.tokens,
        300 + 200,
        "prompt + completion is what counted"
    );

    // Settling against the default over-admits: the mock answers 429s.
    let provider = through_our_limiter(MockProvider::new(limits), true).await;
    assert!(!provider.rejections().is_empty());
}

#[tokio::test(start_paused = true)]
async fn json_requests_and_request_helpers() {
    let provider = MockProvider::new(MockLimits::new(100, 100_000));
    let messages = [
        ChatMessage::system("You are terse."),
        ChatMessage::user("Summarize the plot of Hamlet."),
    ];
    let expected = count_chat(Encoding::O200kBase, &messages);
    assert_eq!(MockRequest::chat(MODEL, &messages).prompt_tokens, expected);
    assert_eq!(
        MockRequest::text(MODEL, "Hello, world!").prompt_tokens,
        count_tokens(Encoding::O200kBase, "Hello, world!")
    );
    let budget = MockRequest::new(MODEL, 5)
        .max_tokens(64)
        .n(3)
        .output_budget();
    assert_eq!((budget.max_tokens, budget.n), (Some(64), Some(3)));

    let body = json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Summarize the plot of Hamlet."}
        ],
        "max_tokens": 100
    });
    let response = provider.chat_json(&body).await.unwrap();
    assert_eq!(response.prompt_tokens, expected);
    assert_eq!(response.charged_tokens, expected + 100);
    assert_eq!(response.completion_tokens, 50);

    let embed = json!({"model": "text-embedding-3-small", "input": ["alpha", "beta gamma"], "dimensions": 3});
    let response = provider.embeddings_json(&embed).await.unwrap();
    let tokens = count_tokens(Encoding::Cl100kBase, "alpha")
        + count_tokens(Encoding::Cl100kBase, "beta gamma");
    assert_eq!(response.usage(), Some(Usage::new(tokens, 0)));
    assert_eq!(response.charged_tokens, tokens);
    assert_eq!(response.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        response.body["data"][1]["embedding"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let err = provider
        .chat_json(&json!({"model": MODEL}))
        .await
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.classify(), Verdict::Fatal);
    assert_eq!(
        provider.stats().calls,
        2,
        "malformed requests never reach the core"
    );
    let _: Arc<MockProvider> = Arc::new(provider);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_cache_learns_a_repeated_system_prompt_and_openai_still_charges_it() {
    use ratelimited::testing::PromptCache;
    use ratelimited::ReportUsage;
    let provider =
        MockProvider::new(MockLimits::new(100, 1_000_000)).prompt_cache(PromptCache::ReadsCounted);
    let manual = "You answer questions about the manual. ".repeat(200);
    let body = |question: &str| {
        serde_json::json!({
            "model": "gpt-4o-mini",
            "max_tokens": 10,
            "messages": [
                {"role": "system", "content": manual},
                {"role": "user", "content": question}
            ]
        })
    };
    let first = provider.chat_json(&body("What is page 1?")).await.unwrap();
    let second = provider.chat_json(&body("And page 2?")).await.unwrap();
    let (first, second) = (first.usage().unwrap(), second.usage().unwrap());
    assert_eq!(first.cache_read_input_tokens, 0);
    assert!(first.cache_creation_input_tokens > 1_000, "{first:?}");
    assert_eq!(
        second.cache_read_input_tokens,
        first.cache_creation_input_tokens
    );
    assert!(second.cache_read_input_tokens < second.input_tokens);
    // OpenAI's rule: the cached prompt is still charged in full.
    let admissions = provider.admissions();
    assert_eq!(admissions[1].tokens, second.input_tokens + 10);
}
