//! The breaker, the budgets and the stats hear a streamed call as they hear a whole response,
//! in paused time: the answer reaches the breaker when the stream is handed over, and the
//! stream's own usage settles the budgets and the stats when it ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::http::HttpError;
use ratelimited::stats::{BreakerState, FamilyStats};
use ratelimited::stream::RateLimitedStream;
use ratelimited::testing::{fresh_registry_with_env, MockStream, ScopeGuard};
use ratelimited::{rate_limited, CallError, Error, Usage};
use serde_json::json;
use tokio::time::advance;

/// A scripted provider: each call pops its status (200 answers, anything else fails).
struct Provider {
    answers: Mutex<VecDeque<u16>>,
    sent: AtomicU32,
}

impl Provider {
    fn new(answers: impl IntoIterator<Item = u16>) -> Arc<Self> {
        Arc::new(Provider {
            answers: Mutex::new(answers.into_iter().collect()),
            sent: AtomicU32::new(0),
        })
    }

    fn sent(&self) -> u32 {
        self.sent.load(Ordering::SeqCst)
    }

    fn next(&self) -> Result<(), CallError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        match self.answers.lock().unwrap().pop_front().expect("scripted") {
            200 => Ok(()),
            status => Err(HttpError::new(status, [("x", "y")], "overloaded").into()),
        }
    }

    async fn whole(&self) -> Result<Usage, CallError> {
        self.next().map(|()| Usage::new(100, 10))
    }

    /// An OpenAI-style stream: two content chunks, then the usage chunk (80 in, 5 out).
    async fn stream(&self) -> Result<MockStream, CallError> {
        self.next()?;
        Ok(MockStream::scripted([
            (
                Duration::from_secs(1),
                Ok(json!({"choices": [{"delta": {"content": "Hi"}}]})),
            ),
            (
                Duration::from_secs(1),
                Ok(json!({"choices": [{"delta": {"content": "!"}}]})),
            ),
            (
                Duration::ZERO,
                Ok(json!({"choices": [], "usage": {"prompt_tokens": 80, "completion_tokens": 5}})),
            ),
        ]))
    }
}

#[rate_limited(model = "gpt-4o-mini", tokens = 100, max_tokens = 10, retries = 0)]
async fn whole(provider: &Provider) -> Result<Usage, CallError> {
    provider.whole().await
}

#[rate_limited(
    model = "gpt-4o-mini",
    tokens = 100,
    max_tokens = 10,
    retries = 0,
    stream
)]
async fn streamed(provider: &Provider) -> Result<RateLimitedStream<MockStream>, CallError> {
    provider.stream().await
}

fn registry(extra: &[(&str, &str)]) -> ScopeGuard {
    let mut vars = vec![
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "10000"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "10000000"),
        ("RATE_LIMITED_HEADROOM", "1"),
        ("RATE_LIMITED_BREAKER_FAILURES", "3"),
        ("RATE_LIMITED_BREAKER_COOLDOWN_MS", "30000"),
    ];
    vars.extend_from_slice(extra);
    fresh_registry_with_env(vars)
}

fn family() -> FamilyStats {
    ratelimited::stats::snapshot()
        .family("gpt-4o-mini")
        .unwrap()
        .clone()
}

async fn drain(mut stream: RateLimitedStream<MockStream>) {
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_streamed_success_ends_a_run_of_failures() {
    let _registry = registry(&[]);
    let provider = Provider::new([503, 503, 200, 503, 200]);
    assert!(whole(&provider).await.is_err());
    assert!(whole(&provider).await.is_err());
    drain(streamed(&provider).await.unwrap()).await;
    // One more failure after a success is a run of one, not the third in a row.
    assert!(whole(&provider).await.is_err());
    assert_eq!(family().breaker, BreakerState::Closed);
    assert_eq!(whole(&provider).await.unwrap(), Usage::new(100, 10));
    assert_eq!(provider.sent(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_streamed_probe_that_gets_an_answer_closes_the_breaker_at_once() {
    let _registry = registry(&[]);
    let provider = Provider::new([503, 503, 503, 200, 200]);
    for _ in 0..3 {
        assert!(whole(&provider).await.is_err());
    }
    assert_eq!(family().breaker, BreakerState::Open);
    advance(Duration::from_secs(30)).await;
    assert_eq!(family().breaker, BreakerState::HalfOpen);

    // The probe is answered with a stream: the breaker closes before the stream is read, so
    // a call that overlaps the stream goes through instead of failing fast.
    let probe = streamed(&provider).await.unwrap();
    assert_eq!(family().breaker, BreakerState::Closed);
    assert_eq!(whole(&provider).await.unwrap(), Usage::new(100, 10));
    drain(probe).await;
    assert_eq!(family().breaker, BreakerState::Closed);
    assert_eq!(provider.sent(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_stream_settles_budgets_and_stats_to_its_usage_when_it_ends() {
    let _registry = registry(&[
        ("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "1000"),
        ("RATE_LIMITED_GPT_4O_MINI_PRICE", "input=1,output=2"),
    ]);
    let provider = Provider::new([200]);
    let stream = streamed(&provider).await.unwrap();

    // While it runs, the stream is in flight and holds its whole reservation (100 + 10).
    let live = family();
    assert_eq!((live.in_flight, live.admitted), (1, 1));
    assert_eq!(live.budget_left.tokens, Some(890));
    assert_eq!(live.charged_tokens, 0);

    drain(stream).await;
    let ended = family();
    assert_eq!(ended.in_flight, 0);
    // Settled like a whole response that reported 80 in and 5 out: the budget is charged the
    // usage, the stats count it, and the dollars are priced on it (80 × $1 + 5 × $2 per
    // million tokens).
    assert_eq!(ended.budget_left.tokens, Some(915));
    assert_eq!(ended.reported_calls, 1);
    assert_eq!(
        (ended.reported_input_tokens, ended.reported_output_tokens),
        (80, 5)
    );
    assert_eq!(ended.estimated_input_tokens, 100);
    // gpt-4o-mini does not refund unused output: the limiter keeps the reserved 10.
    assert_eq!(ended.charged_tokens, 90);
    let cost = ended.cost_usd.unwrap();
    assert!((cost - 90e-6).abs() < 1e-12, "cost {cost}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_end_keeps_its_whole_reservation_in_the_budget() {
    let _registry = registry(&[("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "1000")]);
    let provider = Provider::new([200, 200]);
    let mut stream = streamed(&provider).await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let dropped = family();
    assert_eq!(dropped.in_flight, 0);
    // The provider has counted it and its usage never came: the estimate stays spent.
    assert_eq!(dropped.budget_left.tokens, Some(890));
    assert_eq!(dropped.reported_calls, 0);
    // A dropped stream is still an answer for the breaker: nothing was left half-open.
    assert_eq!(dropped.breaker, BreakerState::Closed);
    drain(streamed(&provider).await.unwrap()).await;
    assert_eq!(family().budget_left.tokens, Some(890 - 85));
}

#[tokio::test(start_paused = true)]
async fn a_streamed_call_refused_by_its_budget_sends_nothing() {
    let _registry = registry(&[("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "200")]);
    let provider = Provider::new([200, 200]);
    drain(streamed(&provider).await.unwrap()).await;
    // 200 - 85 = 115 left: the next stream reserves 110 and fits; then 30 are left.
    drain(streamed(&provider).await.unwrap()).await;
    match streamed(&provider).await {
        Err(CallError::Limiter(Error::BudgetExhausted { .. })) => {}
        other => panic!("expected BudgetExhausted, got {other:?}"),
    }
    assert_eq!(provider.sent(), 2);
}
