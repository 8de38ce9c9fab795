//! A tightening to the server's count against a real `redis-server` (issue 18, items 5 and 8):
//! it lands after the settles sent before it, and the fallback takes only its share of the
//! fleet's count.

use std::time::{Duration, Instant};

use ratelimited::limiter::{Cost, Dimension};
use ratelimited::redis::RedisConfig;
use ratelimited::{Limiter, Usage};

mod redis_support;
use redis_support::{eventually, RedisServer};

const MODEL: &str = "tighten-model";
const TAG: &str = "ratelimited:{openai:tighten-model:tier-1}";
const MINUTE: Duration = Duration::from_secs(60);

fn limiter(config: RedisConfig, tpm: &str) -> Limiter {
    config
        .timeout(Duration::from_secs(2))
        .registry_with_env([
            ("RATE_LIMITED_TIGHTEN_MODEL_TPM", tpm),
            ("RATE_LIMITED_HEADROOM", "1"),
        ])
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap()
        .limiter
}

/// Item 5: a settle's refund and the tightening to the server's count after it (which already
/// counts the settled usage) are both sent in the background. On a multi-thread runtime the
/// tightening must still land second, or the refund takes the bucket below the server's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item5_a_tightening_lands_after_the_settles_sent_before_it() {
    let redis = RedisServer::start();
    let limiter = limiter(RedisConfig::new(redis.url()), "6000000");
    let key = format!("{TAG}:tpm");
    // Loaded now, so that every script call below is one EVALSHA on the server.
    let script = include_str!("../runtime/src/store/family.lua");
    assert_eq!(redis.cli(&["SCRIPT", "LOAD", script]).trim().len(), 40);
    for round in 0..40 {
        let reservation = limiter.acquire(Cost::request(50_000, 0)).await.unwrap();
        let started = Instant::now();
        // The server counts 1,000 of the 50,000 reserved, and says so in the answer.
        reservation.settle(Usage::new(1_000, 0));
        limiter.tighten(Dimension::TokensPerMinute, 20_000);
        // Both done: the settle took 49,000 back, the tightening raised the level to 20,000.
        // Three script calls a round: the reservation, the settle, the tightening.
        eventually("the settle and the tightening to reach Redis", || {
            redis.calls("evalsha") >= 3 * (round + 1)
        })
        .await;
        let level = redis.units_in_use(&key, 6_000_000, MINUTE);
        let refilled = 100_000.0 * (started.elapsed().as_secs_f64() + 0.1);
        assert!(
            level >= 20_000.0 - refilled,
            "round {round}: {level:.0} in use in Redis, below the server's 20,000: the refund \
             landed after the tightening"
        );
        // Back to empty for the next round.
        redis.cli(&["DEL", &key]);
    }
}

/// Item 8: the fleet's count, reported while Redis answers, fills the fallback (a quarter of
/// the limit here) only in proportion: when Redis then goes away, the fallback admits what its
/// share leaves, at once, instead of nothing for minutes.
#[tokio::test]
async fn item8_the_fleet_count_fills_the_fallback_in_proportion() {
    let mut redis = RedisServer::start();
    let limiter = limiter(RedisConfig::new(redis.url()).fallback_share(0.25), "6000");
    limiter.acquire(Cost::request(10, 0)).await.unwrap().keep();
    // The server counts half of the limit in use, fleet-wide.
    limiter.tighten(Dimension::TokensPerMinute, 3_000);
    redis.kill();
    // The fallback (1,500 TPM) holds its share of that, 750: 500 more fit at once. With the
    // fleet's 3,000 in it, it would wait 81 s.
    let reservation = tokio::time::timeout(
        Duration::from_secs(5),
        limiter.acquire(Cost::request(500, 0)),
    )
    .await
    .expect("the fallback admitted nothing")
    .unwrap();
    assert_eq!(reservation.shared_start(), None, "admitted by the fallback");
    assert!(limiter.shared_store_down());
    // And no more than its share: 750 + 500 in use, 300 more must wait.
    let more = tokio::time::timeout(
        Duration::from_millis(200),
        limiter.acquire(Cost::request(300, 0)),
    );
    assert!(more.await.is_err(), "the fallback admitted over its share");
}

/// Item 8: the fallback is kept as full as Redis, at its share, by every admission: when
/// Redis goes away the fallback starts where the fleet was, with no burst on top of it.
#[tokio::test]
async fn item8_the_fallback_starts_an_outage_as_full_as_redis_was() {
    let mut redis = RedisServer::start();
    let limiter = limiter(RedisConfig::new(redis.url()).fallback_share(0.25), "6000");
    // The fleet has 5,400 of 6,000 in use.
    limiter
        .acquire(Cost::request(5_400, 0))
        .await
        .unwrap()
        .keep();
    redis.kill();
    // The fallback (1,500 TPM) holds its share of that, 1,350: 500 more must wait ~14 s.
    let more = tokio::time::timeout(
        Duration::from_millis(300),
        limiter.acquire(Cost::request(500, 0)),
    );
    assert!(
        more.await.is_err(),
        "the fallback admitted a burst on top of the fleet"
    );
    assert!(limiter.shared_store_down());
    let within = tokio::time::timeout(
        Duration::from_secs(2),
        limiter.acquire(Cost::request(100, 0)),
    );
    assert!(within.await.is_ok(), "the fallback's share of what is left");
}
