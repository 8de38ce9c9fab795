//! Giving up on a shared reservation gives back all it took (issue 18, items 6 and 9), against
//! a real `redis-server`: a waiter that leaves after its admission arrived but before it read
//! it, and a reservation scheduled hours ahead that is cancelled. The futures are polled by
//! hand, so each step happens at a known point, with no sleep.

use std::time::{Duration, SystemTime};

use ratelimited::redis::RedisConfig;
use ratelimited::{
    limiter::{Cost, Dimension, Reservation},
    Limiter, Usage,
};

mod redis_support;
use redis_support::{eventually, RedisServer, Woken};

const TAG: &str = "ratelimited:{openai:cancel-model:tier-1}";

fn limiter(redis: &RedisServer, vars: &[(&str, &str)]) -> Limiter {
    let mut vars = vars.to_vec();
    vars.push(("RATE_LIMITED_HEADROOM", "1"));
    RedisConfig::new(redis.url())
        // Far above a call's time on a loaded machine: these tests are not about timeouts.
        .timeout(Duration::from_secs(2))
        .registry_with_env(vars)
        .limiter_with("cancel-model", Some("openai"), None)
        .unwrap()
        .limiter
}

/// Item 9: the sender delivered an admission (charged, with a concurrency slot) to a waiter
/// that was dropped before it read it: both go back at once, not a lease time later.
#[tokio::test]
async fn item9_an_admission_whose_waiter_left_before_reading_it_is_given_back() {
    let redis = RedisServer::start();
    let limiter = limiter(
        &redis,
        &[
            ("RATE_LIMITED_CANCEL_MODEL_TPM", "6000"),
            ("RATE_LIMITED_CANCEL_MODEL_CONCURRENCY", "2"),
        ],
    );
    let woken = Woken::new();
    let mut acquire = limiter.acquire(Cost::request(1_000, 0));
    assert!(woken.poll(&mut acquire).is_pending());
    // The sender answered: the admission waits in the waiter's channel, charged in Redis ...
    woken.notified().await;
    let leases = format!("{TAG}:leases");
    assert_eq!(redis.zcard(&leases), 1);
    // ... and the waiter goes away without reading it.
    drop(acquire);
    eventually("the unread admission given back", || {
        redis.zcard(&leases) == 0
            && redis.units_in_use(&format!("{TAG}:tpm"), 6_000, Duration::from_secs(60)) < 1.0
    })
    .await;
}

/// Item 6: with 900 of 1,000 tokens used on both the minute's and the day's bucket, 500 more
/// are scheduled 9.6 h ahead (the day's bucket binds) and pushed the minute's bucket there
/// too. Cancelled before its start, it gives back that place as well as its tokens: the next
/// request of this process is not held behind it, and no process waits for it.
#[tokio::test]
async fn item6_a_cancelled_reservation_scheduled_ahead_leaves_no_debt_and_no_sleeper() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_CANCEL_MODEL_TPM", "1000"),
        ("RATE_LIMITED_CANCEL_MODEL_TPD", "1000"),
    ];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    a.acquire(Cost::request(900, 0)).await.unwrap().keep();

    let woken = Woken::new();
    let mut ahead = a.acquire(Cost::request(500, 0));
    assert!(woken.poll(&mut ahead).is_pending());
    woken.notified().await;
    // Admitted, and asleep until its start 9.6 h away.
    assert!(woken.poll(&mut ahead).is_pending());
    drop(ahead);

    let bound = Duration::from_secs(5);
    let next = tokio::time::timeout(bound, a.acquire(Cost::request(50, 0)))
        .await
        .expect("this process's next request waited for the cancelled one's start")
        .unwrap();
    let start = next.shared_start().unwrap();
    assert!(
        start <= SystemTime::now() + Duration::from_secs(1),
        "scheduled {:?} ahead",
        start.duration_since(SystemTime::now())
    );
    next.keep();
    let other = tokio::time::timeout(bound, b.acquire(Cost::request(20, 0)))
        .await
        .expect("another process waited for the cancelled reservation's place")
        .unwrap();
    other.keep();
}

/// Item 6: while this process's reservation waits 30 s ahead, room given back in the process
/// (`give_back`: a refund, or a raised limit) lets a queued request that fits now go at once,
/// instead of after that start.
async fn room_given_back_lets_the_queue_go(give_back: impl FnOnce(&Limiter, Reservation)) {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, &[("RATE_LIMITED_CANCEL_MODEL_TPM", "1000")]);
    let spent = limiter.acquire(Cost::request(1_000, 0)).await.unwrap();
    let woken = Woken::new();
    let mut ahead = limiter.acquire(Cost::request(500, 0));
    assert!(woken.poll(&mut ahead).is_pending());
    woken.notified().await;
    // Admitted, and asleep until its start 30 s away.
    assert!(woken.poll(&mut ahead).is_pending());
    give_back(&limiter, spent);
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        limiter.acquire(Cost::request(100, 0)),
    )
    .await
    .expect("the queue waited for the start of the reservation ahead")
    .unwrap();
    assert!(next.shared_start().unwrap() <= SystemTime::now() + Duration::from_secs(1));
    next.keep();
    drop(ahead);
}

#[tokio::test]
async fn item6_a_refund_lets_the_queue_behind_a_reservation_ahead_go() {
    // 900 of the 1,000 tokens given back.
    room_given_back_lets_the_queue_go(|_, spent| spent.settle(Usage::new(100, 0))).await;
}

#[tokio::test]
async fn item6_a_raised_limit_lets_the_queue_behind_a_reservation_ahead_go() {
    room_given_back_lets_the_queue_go(|limiter, spent| {
        spent.keep();
        let mut quota = limiter.quota();
        quota.set_limit(Dimension::TokensPerMinute, Some(2_000));
        limiter.set_quota(quota);
    })
    .await;
}
