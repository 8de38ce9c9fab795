//! The per-family circuit breaker through `#[rate_limited]`, in paused time: repeated 5xx open
//! it, an open breaker sends nothing, one probe decides in half-open, and 429s never trip it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::testing::{fresh_registry_with_env, ScopeGuard};
use ratelimited::{rate_limited, stats::BreakerState, CallError, Usage};
use tokio::time::{advance, Instant};

mod guard_support;
use guard_support::circuit_open;

/// What the fake provider answers next: after `latency`, a status (200 = usage).
#[derive(Clone, Copy)]
struct Answer {
    status: u16,
    latency: Duration,
}

const OK: Answer = Answer {
    status: 200,
    latency: Duration::ZERO,
};
const DOWN: Answer = Answer {
    status: 503,
    latency: Duration::ZERO,
};

/// A scripted provider that counts what reaches it.
#[derive(Default)]
struct Provider {
    answers: Mutex<VecDeque<Answer>>,
    sent: AtomicU32,
}

impl Provider {
    fn new(answers: impl IntoIterator<Item = Answer>) -> Arc<Self> {
        Arc::new(Provider {
            answers: Mutex::new(answers.into_iter().collect()),
            sent: AtomicU32::new(0),
        })
    }

    fn sent(&self) -> u32 {
        self.sent.load(Ordering::SeqCst)
    }

    async fn send(&self) -> Result<Usage, CallError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers.lock().unwrap().pop_front().expect("scripted");
        tokio::time::sleep(answer.latency).await;
        match answer.status {
            200 => Ok(Usage::new(100, 10)),
            429 => Err(HttpError::new(429, [("retry-after", "1")], "slow down").into()),
            status => Err(HttpError::new(status, [("x", "y")], "overloaded").into()),
        }
    }
}

#[rate_limited(model = "gpt-4o-mini", tokens = 100, max_tokens = 10, retries = 0)]
async fn once(provider: &Provider) -> Result<Usage, CallError> {
    provider.send().await
}

#[rate_limited(model = "gpt-4o-mini", tokens = 100, max_tokens = 10, retries = 6)]
async fn with_retries(provider: &Provider) -> Result<Usage, CallError> {
    provider.send().await
}

fn registry() -> ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "10000"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "10000000"),
        ("RATE_LIMITED_HEADROOM", "1"),
        ("RATE_LIMITED_BREAKER_FAILURES", "3"),
        ("RATE_LIMITED_BREAKER_COOLDOWN_MS", "30000"),
    ])
}

fn breaker() -> BreakerState {
    ratelimited::stats::snapshot()
        .family("gpt-4o-mini")
        .unwrap()
        .breaker
}

#[tokio::test(start_paused = true)]
async fn every_transition_at_its_exact_virtual_time() {
    let _registry = registry();
    let slow_down = Answer {
        status: 503,
        latency: Duration::from_secs(2),
    };
    let provider = Provider::new([DOWN, DOWN, DOWN, slow_down, OK, OK]);
    let start = Instant::now();

    // Closed: three 503s in a row open it.
    for _ in 0..3 {
        assert!(once(&provider).await.is_err());
    }
    assert_eq!(breaker(), BreakerState::Open);
    // Open: fails at once, nothing sent, and says when a probe may go.
    assert_eq!(
        circuit_open(once(&provider).await),
        Some(Duration::from_secs(30))
    );
    advance(Duration::from_millis(29_999)).await;
    assert_eq!(
        circuit_open(once(&provider).await),
        Some(Duration::from_millis(1))
    );
    assert_eq!(provider.sent(), 3);

    // Half-open at exactly 30 s: one probe goes, the others fail fast while it is out.
    advance(Duration::from_millis(1)).await;
    assert_eq!(breaker(), BreakerState::HalfOpen);
    let probe = {
        let provider = Arc::clone(&provider);
        ratelimited::testing::spawn_scoped(async move { once(&provider).await })
    };
    while provider.sent() < 4 {
        tokio::task::yield_now().await;
    }
    assert_eq!(circuit_open(once(&provider).await), None);
    // The probe's 503 at 32 s opens it again for a full cool-down.
    assert!(probe.await.unwrap().is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(32));
    assert_eq!(breaker(), BreakerState::Open);
    assert_eq!(
        circuit_open(once(&provider).await),
        Some(Duration::from_secs(30))
    );

    // At 62 s a probe that gets an answer closes it; calls flow again.
    advance(Duration::from_secs(30)).await;
    assert_eq!(once(&provider).await.unwrap(), Usage::new(100, 10));
    assert_eq!(breaker(), BreakerState::Closed);
    assert!(once(&provider).await.is_ok());
    assert_eq!(provider.sent(), 6);

    let stats = ratelimited::stats::snapshot();
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!((family.issued, family.admitted, family.refused), (10, 6, 4));
    assert_eq!(family.transient_failures, 4);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_ends_the_retries_of_a_call_in_progress() {
    let _registry = registry();
    let provider = Provider::new([DOWN, DOWN, DOWN, OK]);
    let result = with_retries(&provider).await;
    assert!(circuit_open(result).is_some());
    assert_eq!(provider.sent(), 3, "the fourth attempt was never sent");
    let stats = ratelimited::stats::snapshot();
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.retries.transient, 3);
    assert_eq!(family.breaker, BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_handled_by_waiting_never_trip_it() {
    let _registry = registry();
    let throttled = Answer {
        status: 429,
        latency: Duration::ZERO,
    };
    let provider = Provider::new([throttled; 4].into_iter().chain([DOWN, DOWN, OK]));
    let start = Instant::now();
    let result = with_retries(&provider).await;
    assert_eq!(result.unwrap(), Usage::new(100, 10));
    let stats = ratelimited::stats::snapshot();
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.breaker, BreakerState::Closed);
    assert_eq!(family.rate_limited, 4);
    assert_eq!(family.retries.rate_limited, 4);
    assert_eq!(family.retries.transient, 2);
    // Four retry-after: 1 waits, then two jittered backoffs (0.25 s to 0.75 s, then 0.5 s to
    // 1.5 s).
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(4_750) && elapsed <= Duration::from_millis(6_250),
        "{elapsed:?}"
    );
}
