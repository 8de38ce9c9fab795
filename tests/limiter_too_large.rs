//! Hardening #8.2: a request larger than a bucket fails on arrival even when others are queued
//! ahead of it, instead of waiting its turn only to fail at the head (paused tokio clock).

use std::time::Duration;

use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{
    limiter::{Cost, Dimension},
    rate_limited, Classify, Error, Limiter, Quota, Verdict,
};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The fake call never fails by itself: its only errors are the limiter's.
#[derive(Debug)]
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl Classify for ApiError {
    fn classify(&self) -> Verdict {
        self.0.classify()
    }
}

fn tokens(n: u64) -> Cost {
    Cost::request(n, 0)
}

#[tokio::test(start_paused = true)]
async fn acquire_fails_at_once_when_too_large_behind_a_queue() {
    let limiter = Limiter::new(Quota::default().tpm(30_000));
    limiter.acquire(tokens(30_000)).await.unwrap().keep();
    // Someone waits 20 s for 10k tokens to refill.
    let waiting = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire(tokens(10_000)).await.map(|r| r.keep()) }
    });
    tokio::task::yield_now().await;
    assert_eq!(limiter.waiting(), 1);

    let start = Instant::now();
    let err = limiter.acquire(tokens(30_001)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        err,
        Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 30_001,
            capacity: 30_000
        }
    );
    // The queue is as it was: the waiter still goes first, after exactly its wait.
    assert_eq!(limiter.waiting(), 1);
    waiting.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn concurrency_above_its_cap_fails_at_once_behind_a_queue() {
    let limiter = Limiter::new(Quota::default().concurrency(1));
    let held = limiter.acquire(Cost::request(0, 0)).await.unwrap();
    let waiting = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire(Cost::request(0, 0)).await.map(|r| r.keep()) }
    });
    tokio::task::yield_now().await;
    assert_eq!(limiter.waiting(), 1);
    let two_requests = Cost {
        requests: 2,
        ..Cost::default()
    };
    let err = limiter.acquire(two_requests).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RequestTooLarge {
                dimension: Dimension::Concurrency,
                requested: 2,
                capacity: 1
            }
        ),
        "{err}"
    );
    held.keep();
    waiting.await.unwrap().unwrap();
}

#[rate_limited(model = "big-model", provider = "openai", tokens = tokens, max_tokens = 0, retries = 0)]
async fn call_with(tokens: u64) -> Result<Value, ApiError> {
    Ok(json!({"usage": {"prompt_tokens": tokens, "completion_tokens": 0}}))
}

#[tokio::test(start_paused = true)]
async fn the_attribute_fails_at_once_when_too_large_behind_a_queue() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_BIG_MODEL_TPM", "1000")]);
    // Headroom 0.9: capacity 900. Fill it, then queue a caller behind the refill.
    call_with(900).await.unwrap();
    let waiting = tokio::spawn(call_with(600));
    tokio::task::yield_now().await;

    let start = Instant::now();
    let err = call_with(901).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    let ApiError(err) = err;
    assert!(
        matches!(
            err,
            Error::RequestTooLarge {
                requested: 901,
                capacity: 900,
                ..
            }
        ),
        "{err}"
    );
    waiting.await.unwrap().unwrap();
    // 600 tokens refill at 900 per minute: 40 s.
    assert_eq!(start.elapsed(), Duration::from_secs(40));
}

/// Issue 19, item 7: a first call refused as too large sent nothing, so it gives back its part
/// of the opening allowance (a quarter of the bucket, 225 tokens here): the next call that
/// fits goes at once, not after the 10 s the opening gate waits for a first answer.
#[tokio::test(start_paused = true)]
async fn a_call_refused_as_too_large_gives_back_its_opening_allowance() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_BIG_MODEL_TPM", "1000")]);
    let start = Instant::now();
    let err = call_with(901).await.unwrap_err();
    assert!(
        matches!(err.0, Error::RequestTooLarge { .. }),
        "{:?}",
        err.0
    );
    call_with(200).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}
