//! A process with more than one tokio runtime, against a real `redis-server` (issue 18): a
//! waiter never waits forever on a sender whose runtime is no longer driven.

use std::time::Duration;

use ratelimited::limiter::Cost;
use ratelimited::redis::RedisConfig;

mod redis_support;
use redis_support::RedisServer;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread runtime between two `block_on` calls drives nothing: the family's sender
/// started there (waiting for the start of a request it scheduled ahead, which was then
/// cancelled) stalls. A waiter on another runtime sees no progress for a second and starts a
/// sender of its own, which sends the cancelled request's refund first.
#[test]
fn a_sender_on_a_runtime_no_longer_driven_is_taken_over() {
    let redis = RedisServer::start();
    let first = current_thread();
    // Made on the first runtime, as a family is on its first call.
    let limiter = first.block_on(async {
        RedisConfig::new(redis.url())
            .timeout(Duration::from_secs(2))
            .registry_with_env([
                ("RATE_LIMITED_RUNTIMES_MODEL_TPM", "6000"),
                ("RATE_LIMITED_HEADROOM", "1"),
            ])
            .limiter_with("runtimes-model", Some("openai"), None)
            .unwrap()
            .limiter
    });
    first.block_on(async {
        limiter
            .acquire(Cost::request(5_950, 0))
            .await
            .unwrap()
            .keep();
        // Scheduled 30 s ahead, then given up on: the sender was waiting for its start.
        let ahead = tokio::time::timeout(
            Duration::from_millis(100),
            limiter.acquire(Cost::request(3_000, 0)),
        );
        assert!(ahead.await.is_err(), "admitted at once on a full bucket");
    });
    let second = current_thread();
    let started = std::time::Instant::now();
    let reservation = second
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                limiter.acquire(Cost::request(50, 0)),
            )
            .await
        })
        .expect("waited on a sender that nobody drives");
    let waited = started.elapsed();
    // The stall, then the call on the connection the first runtime drives (it times out, and
    // the fallback admits: see the README on several runtimes).
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    reservation.unwrap().keep();
    drop(first);
}

/// A family made outside any runtime (a registry set up before `main` builds one) connects on
/// its first call, on the runtime that makes it.
#[test]
fn a_family_made_outside_a_runtime_connects_on_its_first_call() {
    let redis = RedisServer::start();
    let limiter = RedisConfig::new(redis.url())
        .registry_with_env([("RATE_LIMITED_RUNTIMES_MODEL_TPM", "6000")])
        .limiter_with("runtimes-model", Some("openai"), None)
        .unwrap()
        .limiter;
    let reservation = current_thread()
        .block_on(limiter.acquire(Cost::request(100, 0)))
        .unwrap();
    assert!(reservation.shared_start().is_some(), "admitted by Redis");
    assert!(!limiter.shared_store_down());
}
