//! `#[rate_limited]` end to end on fake API functions, in paused time: retries as the server
//! asks, never retries what cannot succeed, fails too-large requests before sending, settles
//! with real usage.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{limiter::Dimension, rate_limited, Classify, Verdict};
use serde_json::{json, Value};
use tokio::time::Instant;

mod common;
use common::ApiError;

/// A scripted API: answers each call with the next scripted response (then successes).
#[derive(Default)]
struct FakeApi {
    runs: AtomicU32,
    script: Mutex<VecDeque<HttpError>>,
    completion_tokens: u64,
    calls_at: Mutex<Vec<Instant>>,
}

impl FakeApi {
    fn scripted(errors: impl IntoIterator<Item = HttpError>) -> Arc<Self> {
        Arc::new(FakeApi {
            script: Mutex::new(errors.into_iter().collect()),
            completion_tokens: 10,
            ..FakeApi::default()
        })
    }

    async fn chat(&self, prompt_tokens: u64) -> Result<Value, ApiError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.calls_at.lock().unwrap().push(Instant::now());
        if let Some(error) = self.script.lock().unwrap().pop_front() {
            return Err(ApiError::Http(error));
        }
        Ok(json!({
            "choices": [{"message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": self.completion_tokens},
        }))
    }

    fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }
}

fn rate_limited_429(retry_after_ms: &str) -> HttpError {
    HttpError::new(
        429,
        [("retry-after-ms", retry_after_ms)],
        r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1.5s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    )
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 100)]
async fn summarize(api: &FakeApi, prompt: &str) -> Result<Value, ApiError> {
    let _ = prompt;
    api.chat(20).await
}

#[tokio::test(start_paused = true)]
async fn two_429s_with_retry_after_ms_then_success_take_exactly_three_seconds() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([rate_limited_429("1500"), rate_limited_429("1500")]);
    let start = Instant::now();
    let response = summarize(&api, "Summarize this.").await.unwrap();
    assert_eq!(response["choices"][0]["message"]["content"], "ok");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(api.runs(), 3);
}

#[tokio::test(start_paused = true)]
async fn insufficient_quota_fails_at_once_after_one_run() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([HttpError::new(
        429,
        [("retry-after-ms", "20")],
        r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    )]);
    let start = Instant::now();
    let err = summarize(&api, "hello").await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Http(e) if e.status == 429),
        "{err:?}"
    );
    assert!(matches!(err.classify(), Verdict::QuotaExhausted { .. }));
    assert_eq!(api.runs(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[rate_limited(model = "gpt-4o", tokens = 40_000, max_tokens = 10)]
async fn huge(api: &FakeApi) -> Result<Value, ApiError> {
    api.chat(40_000).await
}

#[tokio::test(start_paused = true)]
async fn a_request_too_large_fails_before_the_body_runs() {
    // gpt-4o at tier-1 is 30,000 TPM; at the default headroom 0.9 the bucket holds 27,000.
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([]);
    let err = huge(&api).await.unwrap_err();
    match err {
        ApiError::Limiter(ratelimited::Error::RequestTooLarge {
            dimension,
            requested,
            capacity,
        }) => {
            assert_eq!(dimension, Dimension::TokensPerMinute);
            assert_eq!(requested, 40_010);
            assert_eq!(capacity, 27_000);
        }
        other => panic!("expected RequestTooLarge, got {other:?}"),
    }
    assert_eq!(api.runs(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_of_ten_minutes_fails_at_once() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([HttpError::new(
        429,
        [("retry-after", "600")],
        r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
    )]);
    let start = Instant::now();
    let err = summarize(&api, "hello").await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Limiter(ratelimited::Error::RetryAfterTooLong { retry_after, max })
                if retry_after == Duration::from_secs(600) && max == Duration::from_secs(120)
        ),
        "{err:?}"
    );
    assert_eq!(api.runs(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[rate_limited(
    model = "test-model",
    provider = "openai",
    tokens = 10,
    max_tokens = 10
)]
async fn sixty_rpm(api: &FakeApi) -> Result<Value, ApiError> {
    api.chat(10).await
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_calls_at_sixty_rpm_finish_at_forty_seconds() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_TEST_MODEL_RPM", "60"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let api = FakeApi::scripted([]);
    let start = Instant::now();
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                sixty_rpm(&api).await.unwrap();
                start.elapsed()
            })
        })
        .collect();
    let mut finished = Vec::new();
    for call in calls {
        finished.push(call.await.unwrap());
    }
    // A burst of 60 at once, then one a second: the last one at 40 s.
    assert_eq!(finished.iter().max(), Some(&Duration::from_secs(40)));
    assert_eq!(
        finished.iter().filter(|d| **d == Duration::ZERO).count(),
        60
    );
    assert_eq!(api.runs(), 100);
}

#[rate_limited(
    model = "claude-test",
    provider = "anthropic",
    tokens = 1_000,
    max_tokens = 8_000
)]
async fn long_answer(api: &FakeApi) -> Result<Value, ApiError> {
    api.chat(1_000).await
}

#[tokio::test(start_paused = true)]
async fn settling_unused_output_lets_the_next_caller_in_earlier() {
    // Anthropic adjusts its output-tokens bucket to the real output at the end: so do we.
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_CLAUDE_TEST_OTPM", "10000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    // Each call reserves 8,000 output tokens and really produces 3,000.
    let api = Arc::new(FakeApi {
        completion_tokens: 3_000,
        ..FakeApi::default()
    });
    let start = Instant::now();
    long_answer(&api).await.unwrap();
    long_answer(&api).await.unwrap();
    // After the settle 3,000 are in use; 8,000 more fit once 1,000 have refilled: 6 s.
    // (Without the refund, 8,000 in use, it would be 36 s.)
    assert_eq!(start.elapsed(), Duration::from_secs(6));
}

#[rate_limited(
    model = "test-model",
    provider = "openai",
    tokens = 1_000,
    max_tokens = 8_000
)]
async fn long_openai_answer(api: &FakeApi) -> Result<Value, ApiError> {
    api.chat(1_000).await
}

#[tokio::test(start_paused = true)]
async fn openai_output_reservations_stay_charged_because_the_server_keeps_them() {
    // OpenAI charges prompt + max_tokens at admission and gives nothing back: refunding the
    // unused output locally would admit requests the server rejects.
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_TEST_MODEL_TPM", "10000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let api = Arc::new(FakeApi {
        completion_tokens: 1_000,
        ..FakeApi::default()
    });
    let start = Instant::now();
    long_openai_answer(&api).await.unwrap();
    long_openai_answer(&api).await.unwrap();
    // 9,000 stay in use; 9,000 more fit once 8,000 have refilled: 48 s.
    assert_eq!(start.elapsed(), Duration::from_secs(48));
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_after_a_backoff() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([
        HttpError::new(
            503,
            [("content-type", "text/plain")],
            "upstream unavailable",
        ),
        HttpError::new(
            529,
            [("content-type", "application/json")],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
    ]);
    let start = Instant::now();
    summarize(&api, "hello").await.unwrap();
    assert_eq!(api.runs(), 3);
    // Backoff 0.5 s then 1 s, each jittered by ±50 %.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(750) && elapsed <= Duration::from_millis(2_250),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_back_other_callers_of_the_family() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let first = FakeApi::scripted([rate_limited_429("2000")]);
    let other = FakeApi::scripted([]);
    let start = Instant::now();
    let first_call = {
        let first = first.clone();
        tokio::spawn(async move { summarize(&first, "a").await.map(|_| start.elapsed()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The 429 came back at t=0; a caller arriving at 0.1 s waits out the hold with it.
    summarize(&other, "b").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(first_call.await.unwrap().unwrap(), Duration::from_secs(2));
    assert_eq!(
        other.calls_at.lock().unwrap()[0] - start,
        Duration::from_secs(2)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_model_names_the_variables_to_set() {
    let _registry = fresh_registry_with_env::<&str, &str>([]);
    let api = FakeApi::scripted([]);
    let err = sixty_rpm(&api).await.unwrap_err();
    let ApiError::Limiter(err) = err else {
        panic!("expected a limiter error")
    };
    let text = err.to_string();
    assert!(text.contains("RATE_LIMITED_TEST_MODEL_RPM"), "{text}");
    assert_eq!(api.runs(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_env_value_is_an_error_naming_it() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_MAX_RETRIES", "lots")]);
    let api = FakeApi::scripted([]);
    let err = summarize(&api, "x").await.unwrap_err();
    let ApiError::Limiter(err) = err else {
        panic!("expected a limiter error")
    };
    let text = err.to_string();
    assert!(
        text.contains("RATE_LIMITED_MAX_RETRIES") && text.contains("lots"),
        "{text}"
    );
}

// With the `redis` feature the URL is used: tests/redis_shared.rs.
#[cfg(not(feature = "redis"))]
#[tokio::test(start_paused = true)]
async fn a_redis_url_is_refused_rather_than_silently_ignored() {
    let _registry = fresh_registry_with_env([(
        "RATE_LIMITED_REDIS_URL",
        "redis://user:secret@127.0.0.1:6379",
    )]);
    let api = FakeApi::scripted([]);
    let err = summarize(&api, "x").await.unwrap_err();
    let ApiError::Limiter(err) = err else {
        panic!("expected a limiter error")
    };
    let text = err.to_string();
    assert!(text.contains("RATE_LIMITED_REDIS_URL"), "{text}");
    assert!(text.contains("`redis` feature"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password must not leak: {text}"
    );
    assert_eq!(api.runs(), 0);
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 100, retries = 0)]
async fn summarize_once(api: &FakeApi, prompt: &str) -> Result<Value, ApiError> {
    let _ = prompt;
    api.chat(20).await
}

#[tokio::test(start_paused = true)]
async fn with_no_retries_a_429_comes_back_as_the_providers_error_and_still_holds_the_family() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let api = FakeApi::scripted([rate_limited_429("1500")]);
    let start = Instant::now();
    let err = summarize_once(&api, "a").await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Http(e) if e.status == 429),
        "{err:?}"
    );
    assert_eq!(api.runs(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The next caller of the family waits out the server's hint.
    summarize_once(&api, "b").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(1_500));
}

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_fails_at_once_instead_of_retrying() {
    for (header, value) in [
        ("retry-after", "99999999999999999999"),
        ("retry-after-ms", "1e300"),
    ] {
        let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
        let api = FakeApi::scripted([HttpError::new(
            429,
            [(header, value)],
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        )]);
        let start = Instant::now();
        let err = summarize(&api, "hello").await.unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::Limiter(ratelimited::Error::RetryAfterTooLong { retry_after, .. })
                    if retry_after == Duration::MAX
            ),
            "{header}: {value}: {err:?}"
        );
        assert_eq!(
            (api.runs(), start.elapsed()),
            (1, Duration::ZERO),
            "{header}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_keeps_the_last_error_as_its_source() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_TIER", "tier-1"),
        ("RATE_LIMITED_MAX_RETRIES", "1"),
    ]);
    let api = FakeApi::scripted([rate_limited_429("100"), rate_limited_429("200")]);
    let err = summarize(&api, "hello").await.unwrap_err();
    let ApiError::Limiter(spent @ ratelimited::Error::RetriesExhausted { attempts: 2, .. }) = &err
    else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    let ratelimited::Error::RetriesExhausted { last_error, .. } = spent else {
        unreachable!()
    };
    let http = last_error
        .downcast_ref::<HttpError>()
        .expect("the HttpError is kept");
    assert_eq!(http.header("retry-after-ms"), Some("200"), "the last one");
    // The std source chain reaches it too.
    let source = std::error::Error::source(spent).and_then(std::error::Error::source);
    assert!(source.is_some_and(|e| e.downcast_ref::<HttpError>().is_some()));
}

/// Defined only by the test's own registry, and named with a provider prefix.
#[rate_limited(model = "openai/scoped-model")]
async fn scoped_model_call() -> Result<(), ratelimited::Error> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_registry_reaches_every_worker_thread() {
    let registry = ratelimited::Registry::with_env([("RATE_LIMITED_SCOPED_MODEL_RPM", "6000")]);
    registry
        .bind(async {
            scoped_model_call().await.unwrap();
            let spawned = (0..8)
                .map(|_| ratelimited::testing::spawn_scoped(scoped_model_call()))
                .collect::<Vec<_>>();
            for task in spawned {
                task.await.unwrap().unwrap();
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_scope_reaches_spawned_tasks_through_spawn_scoped() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_SCOPED_MODEL_RPM", "6000")]);
    // The test body runs on the scoping thread.
    scoped_model_call().await.unwrap();
    ratelimited::testing::spawn_scoped(scoped_model_call())
        .await
        .unwrap()
        .unwrap();
    // A plain tokio::spawn runs on a worker thread the scope does not cover: the call falls back
    // to the global registry (with a warning), where the model is unknown.
    let unscoped = tokio::spawn(scoped_model_call()).await.unwrap();
    assert!(
        matches!(unscoped, Err(ratelimited::Error::UnknownModel { .. })),
        "{unscoped:?}"
    );
}
