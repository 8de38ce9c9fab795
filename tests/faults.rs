//! `#[rate_limited]` against the in-process mock provider, in paused time: a full load with no
//! 429s, and every fault mode ridden out or surfaced, with every request counted in and out.

use std::sync::Arc;
use std::time::Duration;

use ratelimited::testing::{
    fresh_registry_with_env, Fault, MockLimits, MockProvider, MockRequest, MockResponse,
    RejectionKind,
};
use ratelimited::{rate_limited, Classify, Verdict};
use tokio::time::Instant;

mod common;
use common::ApiError;

/// The prompt estimate and `max_tokens` come from `MockRequest` itself.
#[rate_limited(model = "gpt-4o-mini")]
async fn complete(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<MockResponse, ApiError> {
    provider.chat(request).await.map_err(ApiError::Http)
}

const LIMITS: MockLimits = MockLimits::new(60, 20_000);

fn registry() -> ratelimited::testing::ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "60"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "20000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ])
}

/// Fires `count` calls at once and returns each call's result and finish time.
async fn fire(
    provider: &MockProvider,
    count: u64,
) -> Vec<(Result<MockResponse, ApiError>, Duration)> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let provider = provider.clone();
            let request = MockRequest::new("gpt-4o-mini", 200 + (i * 37) % 300).max_tokens(150);
            tokio::spawn(async move {
                let result = complete(&provider, &request).await;
                (result, start.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_full_load_gets_no_429_and_stays_inside_the_servers_buckets() {
    let _registry = registry();
    let provider = MockProvider::new(LIMITS).completion_fraction(0.4);
    let results = fire(&provider, 200).await;
    assert!(results.iter().all(|(r, _)| r.is_ok()), "a call failed");
    let stats = provider.stats();
    assert_eq!(stats.rate_limited, 0, "no 429 at headroom 1.0");
    assert_eq!(stats.admitted, 200, "each request admitted exactly once");
    provider.assert_within_limits();
    // The server charges prompt + max_tokens at admission. The earliest the last request can
    // be admitted is when the token bucket (20,000, refilling 20,000/min) has taken all of it:
    // the limiter must get there to within one timer tick (tokio's timer has 1 ms steps).
    let charged: u64 = (0..200u64).map(|i| 200 + (i * 37) % 300 + 150).sum();
    assert_eq!(stats.admitted_tokens, charged);
    let minimum = Duration::from_secs_f64((charged - 20_000) as f64 * 60.0 / 20_000.0);
    let last = results.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        last >= minimum && last <= minimum + Duration::from_millis(1),
        "last admission at {last:?}, theoretical minimum {minimum:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_is_ridden_out_on_the_servers_schedule() {
    let _registry = registry();
    let provider = MockProvider::new(LIMITS).fault(Fault::RateLimitStorm {
        until: Duration::from_secs(30),
    });
    // Ten calls, one a second: the first meets the storm and is told to come back at 30 s;
    // the family's limiter holds everyone else until then, so they never hit the storm.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let provider = provider.clone();
        tasks.push(tokio::spawn(async move {
            let request = MockRequest::new("gpt-4o-mini", 100).max_tokens(50);
            complete(&provider, &request).await.map(|_| start.elapsed())
        }));
        if i < 9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Duration::from_secs(30));
    }
    let rejections = provider.rejections();
    assert_eq!(rejections.len(), 1, "only the first call met the storm");
    assert_eq!(rejections[0].kind, RejectionKind::Storm);
    assert_eq!(rejections[0].retry_after, Some(Duration::from_secs(30)));
    assert_eq!(provider.stats().admitted, 10);
    provider.assert_within_limits();
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_wait_out_a_storm_behind_the_first_429() {
    let _registry = registry();
    let provider = MockProvider::new(LIMITS).fault(Fault::RateLimitStorm {
        until: Duration::from_millis(12_500),
    });
    let results = fire(&provider, 20).await;
    for (result, at) in &results {
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(*at, Duration::from_millis(12_500));
    }
    // The first 429 holds the family's limiter, so the other 19 never send into the storm.
    assert_eq!(provider.rejections().len(), 1);
    assert_eq!(provider.stats().admitted, 20);
    assert_eq!(provider.stats().calls, 21);
}

#[tokio::test(start_paused = true)]
async fn insufficient_quota_surfaces_at_once_as_a_quota_error() {
    let _registry = registry();
    let provider = MockProvider::new(LIMITS).fault(Fault::InsufficientQuota);
    let start = Instant::now();
    let results = fire(&provider, 5).await;
    for (result, at) in results {
        let err = result.unwrap_err();
        assert!(
            matches!(err.classify(), Verdict::QuotaExhausted { .. }),
            "{err:?}"
        );
        assert_eq!(at, Duration::ZERO);
    }
    // Each call ran once: five answers, no retries.
    assert_eq!(provider.stats().faults, 5);
    assert_eq!(provider.stats().admitted, 0);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_overload_are_retried_and_nothing_is_lost_or_duplicated() {
    let _registry = registry();
    let provider = MockProvider::new(LIMITS)
        .fault(Fault::status(503, 3))
        .fault(Fault::status(529, 3))
        .fault(Fault::timeout(Duration::from_secs(10), 2));
    let results = fire(&provider, 30).await;
    let ok = results.iter().filter(|(r, _)| r.is_ok()).count();
    assert_eq!(ok, 30, "every call came back with its answer");
    let stats = provider.stats();
    assert_eq!(
        stats.faults, 8,
        "3 x 503, 3 x 529, 2 timeouts, each answered once"
    );
    assert_eq!(stats.admitted, 30, "each request admitted exactly once");
    assert_eq!(
        stats.calls, 38,
        "30 calls plus 8 retries reached the server"
    );
    provider.assert_within_limits();
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_budget() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "60"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "20000"),
        ("RATE_LIMITED_MAX_RETRIES", "2"),
    ]);
    let provider = Arc::new(MockProvider::new(LIMITS).fault(Fault::status(503, 100)));
    let request = MockRequest::new("gpt-4o-mini", 100).max_tokens(50);
    let err = complete(&provider, &request).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Limiter(ratelimited::Error::RetriesExhausted { attempts: 3, .. })
        ),
        "{err:?}"
    );
    assert_eq!(provider.stats().faults, 3);
}
