//! The Redis backend under faults of its own making or of the server's (issue 18, items 1 and
//! 10), against a real `redis-server`: a zero-length hold, a script error, a batch whose reply
//! comes after the client gave up on it, and a batch the server runs twice. Each test waits on
//! what the server did (its state, its command counts), never on a sleep.

use std::time::Duration;

use ratelimited::redis::{OnFailure, RedisConfig};
use ratelimited::{limiter::Cost, Error, Limiter};

mod redis_support;
use redis_support::{eventually, RedisServer};

const MODEL: &str = "faults-model";
const TAG: &str = "ratelimited:{openai:faults-model:tier-1}";
const MINUTE: Duration = Duration::from_secs(60);
/// Far above a call's time on a loaded machine, for the tests that are not about timeouts.
const PATIENT: Duration = Duration::from_secs(2);

fn limiter(config: RedisConfig, vars: &[(&str, &str)]) -> Limiter {
    redis_support::shared_limiter(config, MODEL, vars)
}

fn key(suffix: &str) -> String {
    format!("{TAG}:{suffix}")
}

/// Loads the script on the server through another family, charging nothing of this one.
async fn load_the_script(redis: &RedisServer) {
    RedisConfig::new(redis.url())
        .timeout(PATIENT)
        .registry_with_env([("RATE_LIMITED_WARM_UP_TPM", "6000")])
        .limiter_with("warm-up", Some("openai"), None)
        .unwrap()
        .limiter
        .acquire(Cost::request(1, 0))
        .await
        .unwrap()
        .keep();
}

/// Item 1: `retry-after: 0` (or a date in the past) holds nobody, and must not send the script
/// a `SET .. PX 0` that the server refuses.
#[tokio::test]
async fn item1_a_zero_length_hold_is_a_no_op() {
    let redis = RedisServer::start();
    let limiter = limiter(
        RedisConfig::new(redis.url()).timeout(PATIENT),
        &[("RATE_LIMITED_FAULTS_MODEL_TPM", "6000")],
    );
    // Connected, with the script loaded (both may draw error replies of their own).
    limiter.acquire(Cost::request(1, 0)).await.unwrap().keep();
    let errors = redis.error_replies();
    limiter.hold_for(Duration::ZERO);
    // Sent after the first on the same connection: once it is in Redis, so is the first.
    limiter.hold_for(Duration::from_secs(2));
    eventually("the second hold in Redis", || {
        !redis.cli(&["GET", &key("hold")]).trim().is_empty()
    })
    .await;
    assert_eq!(redis.error_replies(), errors, "the script failed");
    assert!(!limiter.shared_store_down());
}

/// Item 1: a script error is an answer from Redis: the call it failed gets the failure policy,
/// but Redis is not down and the next call goes to it.
#[tokio::test]
async fn item1_a_script_error_is_not_redis_down() {
    let redis = RedisServer::start();
    let limiter = limiter(
        RedisConfig::new(redis.url()).timeout(PATIENT),
        &[("RATE_LIMITED_FAULTS_MODEL_TPM", "6000")],
    );
    // A value the script cannot read: it fails on this family's keys.
    redis.cli(&["SET", &key("tpm"), "not-a-time"]);
    let reservation = limiter.acquire(Cost::request(100, 0)).await.unwrap();
    assert_eq!(reservation.shared_start(), None, "not admitted by Redis");
    reservation.keep();
    assert!(
        !limiter.shared_store_down(),
        "a script error opened the breaker"
    );
    redis.cli(&["DEL", &key("tpm")]);
    let reservation = limiter.acquire(Cost::request(100, 0)).await.unwrap();
    assert!(reservation.shared_start().is_some(), "not back on Redis");
    reservation.keep();
}

/// Starts a batch of 1,000 tokens and one concurrency slot that runs on the server 300 ms
/// later, after the client gave up on it at 100 ms; returns the caller's result and once the
/// server has run it.
async fn a_batch_that_runs_after_its_timeout(
    redis: &RedisServer,
    limiter: &Limiter,
) -> Result<ratelimited::limiter::Reservation, ratelimited::Error> {
    load_the_script(redis).await;
    let ran_before = redis.calls("evalsha");
    // Writes (scripts included) wait 300 ms on the server.
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "300", "WRITE"]).trim(), "OK");
    let result = limiter.acquire(Cost::request(1_000, 0)).await;
    eventually("the late batch to run on the server", || {
        redis.calls("evalsha") > ran_before
    })
    .await;
    result
}

fn late_limiter(redis: &RedisServer, on_failure: OnFailure) -> Limiter {
    limiter(
        RedisConfig::new(redis.url())
            .timeout(Duration::from_millis(100))
            .on_failure(on_failure),
        &[
            ("RATE_LIMITED_FAULTS_MODEL_TPM", "6000"),
            ("RATE_LIMITED_FAULTS_MODEL_CONCURRENCY", "4"),
        ],
    )
}

/// Item 10: a batch whose reply comes after the call timed out ran on the server all the
/// same. Its concurrency slot goes back once Redis answers again; its charge stays, since its
/// request went out through the fallback.
#[tokio::test]
async fn item10_a_batch_that_times_out_after_the_server_ran_it_frees_its_slots() {
    let redis = RedisServer::start();
    let limiter = late_limiter(&redis, OnFailure::Local);
    let reservation = a_batch_that_runs_after_its_timeout(&redis, &limiter)
        .await
        .unwrap();
    assert_eq!(reservation.shared_start(), None, "served by the fallback");
    eventually("the late batch's slot given back", || {
        redis.zcard(&key("leases")) == 0
    })
    .await;
    let used = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    assert!(used > 900.0, "the request went out: {used} tokens in use");
    reservation.keep();
}

/// Item 10: failing closed, the request of a batch that timed out never went out: the batch's
/// charge goes back with its slot.
#[tokio::test]
async fn item10_a_batch_that_times_out_failing_closed_gives_back_all_it_took() {
    let redis = RedisServer::start();
    let limiter = late_limiter(&redis, OnFailure::Closed);
    let err = a_batch_that_runs_after_its_timeout(&redis, &limiter)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BackendUnavailable { .. }), "{err}");
    eventually("the late batch's charge and slot given back", || {
        redis.zcard(&key("leases")) == 0 && redis.units_in_use(&key("tpm"), 6_000, MINUTE) < 1.0
    })
    .await;
}

/// Item 10: a batch sent again after the server ran it (the retry after a lost reply) charges
/// nothing more: the server answers it as the first time.
#[tokio::test]
async fn item10_a_batch_sent_twice_is_charged_once() {
    let redis = RedisServer::start();
    let limiter = limiter(
        RedisConfig::new(redis.url()).timeout(PATIENT),
        &[
            ("RATE_LIMITED_FAULTS_MODEL_TPM", "6000"),
            ("RATE_LIMITED_FAULTS_MODEL_CONCURRENCY", "4"),
        ],
    );
    load_the_script(&redis).await;
    let mut monitor = redis.monitor();
    let reservation = limiter.acquire(Cost::request(1_000, 0)).await.unwrap();
    let batch = monitor.next("EVALSHA", "batch");
    let args: Vec<&str> = batch.iter().map(String::as_str).collect();
    let again = redis.cli(&args);
    assert!(
        !again.trim().is_empty(),
        "no answer to the batch sent again"
    );
    let used = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    assert!(used > 990.0 && used <= 1_000.0, "{used} tokens in use");
    assert_eq!(redis.zcard(&key("leases")), 1);
    reservation.keep();
}

/// Item 10: the same without concurrency slots (nothing in the store tells that the batch ran
/// but the record of each process's last batch): charged once.
#[tokio::test]
async fn item10_a_batch_without_slots_sent_twice_is_charged_once() {
    let redis = RedisServer::start();
    let limiter = limiter(
        RedisConfig::new(redis.url()).timeout(PATIENT),
        &[("RATE_LIMITED_FAULTS_MODEL_TPM", "6000")],
    );
    load_the_script(&redis).await;
    let mut monitor = redis.monitor();
    let reservation = limiter.acquire(Cost::request(1_000, 0)).await.unwrap();
    let batch = monitor.next("EVALSHA", "batch");
    let args: Vec<&str> = batch.iter().map(String::as_str).collect();
    let first = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    let again = redis.cli(&args);
    assert!(
        !again.trim().is_empty(),
        "no answer to the batch sent again"
    );
    let used = redis.units_in_use(&key("tpm"), 6_000, MINUTE);
    assert!(
        used > 990.0 && used <= first,
        "{used} tokens in use after the batch ran twice"
    );
    reservation.keep();
}
