//! What Redis does not know after a fault reaches it before anything more is admitted there
//! (issue 18, items 2 and 3), against a real `redis-server`: what a process admitted on its
//! fallback while Redis was away, and, when Redis comes back without its state, the recent
//! spend of every process, the leases of requests still running and the 429 hold.
//!
//! Each test reads the server's own state (its buckets on its own clock, its lease set), and
//! waits on it with bounded polls, never on a sleep.

use std::time::{Duration, Instant};

use ratelimited::redis::RedisConfig;
use ratelimited::{limiter::Cost, Limiter};

mod redis_support;
use redis_support::{eventually, RedisServer};

const MODEL: &str = "recovery-model";
const TAG: &str = "ratelimited:{openai:recovery-model:tier-1}";
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

fn limiter(config: RedisConfig, vars: &[(&str, &str)]) -> Limiter {
    redis_support::shared_limiter(config.timeout(Duration::from_secs(2)), MODEL, vars)
}

fn key(suffix: &str) -> String {
    format!("{TAG}:{suffix}")
}

/// Reserves `tokens` until Redis admits a reservation (the breaker lets one call through per
/// probe interval after an outage), keeping each: what the fallback admitted meanwhile is part
/// of what must be written back. Returns the tokens the fallback admitted.
async fn until_shared_again(limiter: &Limiter, tokens: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut on_fallback = 0;
    loop {
        let reservation = limiter.acquire(Cost::request(tokens, 0)).await.unwrap();
        if reservation.shared_start().is_some() {
            reservation.keep();
            return on_fallback;
        }
        reservation.keep();
        on_fallback += tokens;
        assert!(Instant::now() < deadline, "Redis never admitted again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Item 2: what a process admits on its fallback while Redis is down reaches Redis, per
/// minute and per day, before Redis admits anything more from it.
#[tokio::test]
async fn item2_what_the_fallback_admitted_is_written_back() {
    let mut redis = RedisServer::start();
    let a = limiter(
        RedisConfig::new(redis.url()).fallback_share(0.5),
        &[
            ("RATE_LIMITED_RECOVERY_MODEL_TPM", "6000"),
            ("RATE_LIMITED_RECOVERY_MODEL_TPD", "100000"),
        ],
    );
    a.acquire(Cost::request(1_000, 0)).await.unwrap().keep();
    redis.save_and_kill();
    let started = Instant::now();
    let outage = a.acquire(Cost::request(2_000, 0)).await.unwrap();
    assert_eq!(outage.shared_start(), None, "admitted by the fallback");
    // Settled below its estimate: what is written back is what it used.
    outage.settle(ratelimited::Usage::new(1_500, 0));
    assert!(a.shared_store_down());
    redis.restart_saved();
    let on_fallback = until_shared_again(&a, 10).await;
    let elapsed = started.elapsed().as_secs_f64();
    // Redis knew of 1,000 and the last call's 10; the fallback admitted 1,500 (and the
    // polls), written back for the fleet: over this process's share, half.
    let spent = 1_000.0 + (1_500.0 + on_fallback as f64) / 0.5 + 10.0;
    let tpm = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    let refilled = 100.0 * (elapsed + 1.0);
    assert!(
        tpm >= spent - refilled && tpm <= spent + 1.0,
        "TPM in use {tpm:.0}, spent {spent:.0} in {elapsed:.1} s"
    );
    let tpd = redis.units_in_use(&key("tpd"), 100_000, DAY);
    assert!(
        tpd >= spent - 2.0 && tpd <= spent + 1.0,
        "TPD in use {tpd:.0}, spent {spent:.0}"
    );
}

/// Item 3: Redis flushed mid-run. The next batch finds a new epoch and charges nothing; the
/// process writes back its recent spend first (for the fleet: over its share), then is
/// admitted on top of it. What is written back fills a bucket at most.
#[tokio::test]
async fn item3_a_flushed_store_gets_the_recent_spend_back() {
    let redis = RedisServer::start();
    let vars = [("RATE_LIMITED_RECOVERY_MODEL_TPM", "6000")];
    // Two processes, each half of the fleet.
    let a = limiter(RedisConfig::new(redis.url()).fallback_share(0.5), &vars);
    let b = limiter(RedisConfig::new(redis.url()).fallback_share(0.5), &vars);
    a.acquire(Cost::request(2_000, 0)).await.unwrap().keep();
    // Settled: what is written back is what it used.
    b.acquire(Cost::request(2_500, 0))
        .await
        .unwrap()
        .settle(ratelimited::Usage::new(1_500, 0));
    let started = Instant::now();
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    // A writes back 2 × 2,000 and is admitted (4,100 in use); B's 2 × 1,500 fills the
    // bucket (6,000), and B's 100 go on top, when they fit.
    a.acquire(Cost::request(100, 0)).await.unwrap().keep();
    let after_a = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        after_a >= 4_100.0 - 100.0 * (elapsed + 0.5) && after_a <= 4_101.0,
        "TPM in use {after_a:.0} after A's write-back"
    );
    b.acquire(Cost::request(100, 0)).await.unwrap().keep();
    let elapsed = started.elapsed().as_secs_f64();
    let tpm = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    assert!(
        tpm >= 6_000.0 - 100.0 * (elapsed + 0.5) && tpm <= 6_101.0,
        "TPM in use {tpm:.0} after B's, a full bucket and B's 100"
    );
    assert!(!a.shared_store_down() && !b.shared_store_down());
}

/// Item 3: a request still running when the store lost its leases gets its slot back, at
/// this process's next batch and, with no batch, at its next renewal.
#[tokio::test]
async fn item3_live_leases_are_added_again() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_RECOVERY_MODEL_TPM", "600000"),
        ("RATE_LIMITED_RECOVERY_MODEL_CONCURRENCY", "2"),
    ];
    // Renewed every 200 ms.
    let config = || RedisConfig::new(redis.url()).lease(Duration::from_millis(600));
    let a = limiter(config(), &vars);
    let running = a.acquire(Cost::request(10, 0)).await.unwrap();
    assert_eq!(redis.zcard(&key("leases")), 1);
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    assert_eq!(redis.zcard(&key("leases")), 0);
    // No batch from this process: its renewal finds the new epoch and adds the lease again.
    eventually(
        "the renewal to add the running request's lease again",
        || redis.zcard(&key("leases")) == 1,
    )
    .await;

    // Through a batch: another flush, then a second request.
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    let second = a.acquire(Cost::request(10, 0)).await.unwrap();
    assert_eq!(
        redis.zcard(&key("leases")),
        2,
        "the running request's lease and the new one"
    );
    // Both slots are taken: another process finds none free.
    let b = limiter(config(), &vars);
    let third = tokio::time::timeout(Duration::from_millis(300), b.acquire(Cost::request(10, 0)));
    assert!(third.await.is_err(), "admitted over the concurrency limit");
    drop((running, second));
}

/// Item 3: the 429 hold a flush dropped is set again before anyone is admitted.
#[tokio::test]
async fn item3_the_hold_is_restored() {
    let redis = RedisServer::start();
    let a = limiter(
        RedisConfig::new(redis.url()),
        &[("RATE_LIMITED_RECOVERY_MODEL_TPM", "6000")],
    );
    a.acquire(Cost::request(10, 0)).await.unwrap().keep();
    a.hold_for(Duration::from_secs(30));
    eventually("the hold to reach Redis", || {
        redis.cli(&["EXISTS", &key("hold")]).trim() == "1"
    })
    .await;
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.acquire(Cost::request(10, 0)).await })
    };
    eventually("the hold to be set again", || {
        redis.cli(&["EXISTS", &key("hold")]).trim() == "1"
    })
    .await;
    let ttl: i64 = redis.cli(&["PTTL", &key("hold")]).trim().parse().unwrap();
    assert!(ttl > 25_000, "the hold's rest, not a new one: {ttl} ms");
    assert!(!waiter.is_finished(), "admitted through the hold");
    waiter.abort();
}

/// Item 2: waiters queued on the fallback (a twentieth of the limit here: one request every
/// 2 s) while Redis was down go back to Redis as soon as it answers, instead of draining the
/// fallback's queue at its rate.
#[tokio::test]
async fn item2_waiters_on_the_fallback_go_back_to_redis_when_it_answers() {
    let mut redis = RedisServer::start();
    let a = limiter(
        RedisConfig::new(redis.url()).fallback_share(0.05),
        &[("RATE_LIMITED_RECOVERY_MODEL_RPM", "600")],
    );
    // Redis has 590 of 600 requests in use; the fallback (30 a minute) its share, 29.5.
    let most = Cost {
        requests: 590,
        ..Cost::default()
    };
    a.acquire(most).await.unwrap().keep();
    redis.save_and_kill();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.acquire(Cost::request(1, 0)).await.unwrap() })
        })
        .collect();
    eventually("the breaker to open", || a.shared_store_down()).await;
    redis.restart_saved();
    let started = Instant::now();
    for waiter in waiters {
        let reservation = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("still queued on the fallback")
            .unwrap();
        reservation.keep();
    }
    // Through Redis (10 a second), not the fallback's queue (one every 2 s).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
