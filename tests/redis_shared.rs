//! The Redis backend against a real `redis-server`: one limit shared by several registries
//! (each as another process would hold it), settles, too large, keys, SCRIPT FLUSH, and the
//! failure policy. Real time: the server's clock decides, so each test stays short.

use std::time::{Duration, Instant};

use ratelimited::redis::{OnFailure, RedisConfig};
use ratelimited::{
    limiter::{Cost, Dimension},
    rate_limited, Classify, Error, Usage, Verdict,
};
use serde_json::{json, Value};

mod redis_support;
use redis_support::RedisServer;

/// 6,000 tokens per minute at headroom 1: 100 tokens per second.
const LIMITS: [(&str, &str); 2] = [
    ("RATE_LIMITED_SHARED_MODEL_TPM", "6000"),
    ("RATE_LIMITED_HEADROOM", "1"),
];

fn limiter(config: RedisConfig) -> ratelimited::Limiter {
    config
        .registry_with_env(LIMITS)
        .limiter_with("shared-model", Some("openai"), None)
        .unwrap()
        .limiter
}

#[tokio::test]
async fn two_processes_draw_on_one_bucket() {
    let redis = RedisServer::start();
    let a = limiter(RedisConfig::new(redis.url()));
    let b = limiter(RedisConfig::new(redis.url()));
    a.acquire(Cost::request(6_000, 0)).await.unwrap().keep();
    // B never charged anything itself, yet must wait for A's tokens to refill: 500 tokens
    // at 100 per second.
    let start = Instant::now();
    b.acquire(Cost::request(500, 0)).await.unwrap().keep();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(4_900) && waited < Duration::from_millis(6_500),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_settle_refunds_the_shared_bucket() {
    let redis = RedisServer::start();
    let a = limiter(RedisConfig::new(redis.url()));
    let b = limiter(RedisConfig::new(redis.url()));
    let reservation = a.acquire(Cost::request(5_000, 1_000)).await.unwrap();
    let tpm = "ratelimited:{openai:shared-model:tier-1}:tpm";
    let charged = redis.cli(&["GET", tpm]);
    reservation.settle(Usage::new(100, 0));
    // The settle is sent without waiting: wait until the server's bucket has moved.
    redis_support::eventually("the refund to reach Redis", || {
        redis.cli(&["GET", tpm]) != charged
    })
    .await;
    let start = Instant::now();
    b.acquire(Cost::request(5_800, 0)).await.unwrap().keep();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn too_large_is_an_error_at_once_and_charges_nothing() {
    let redis = RedisServer::start();
    let a = limiter(RedisConfig::new(redis.url()));
    let err = a.acquire(Cost::request(6_001, 0)).await.unwrap_err();
    assert_eq!(
        err,
        Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 6_001,
            capacity: 6_000
        }
    );
    let start = Instant::now();
    a.acquire(Cost::request(6_000, 0)).await.unwrap().keep();
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn every_key_has_the_prefix_one_hash_tag_and_a_ttl() {
    let redis = RedisServer::start();
    let a = limiter(RedisConfig::new(redis.url()).prefix("app-7"));
    a.acquire(Cost::request(3_000, 0)).await.unwrap().keep();
    a.hold_for(Duration::from_secs(2));
    redis_support::eventually("the hold to reach Redis", || {
        redis.cli(&["--scan"]).lines().count() == 4
    })
    .await;
    let keys = redis.cli(&["--scan"]);
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "app-7:{openai:shared-model:tier-1}:epoch",
            "app-7:{openai:shared-model:tier-1}:hold",
            "app-7:{openai:shared-model:tier-1}:ran",
            "app-7:{openai:shared-model:tier-1}:tpm"
        ]
    );
    for key in keys {
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
        // The epoch outlives the longest window (a day); the batches run are kept as long as
        // a batch may be sent again; the others as long as their own state.
        let most = if key.ends_with(":epoch") {
            2 * 86_400_000
        } else if key.ends_with(":ran") {
            120_000
        } else {
            30_000
        };
        assert!(ttl > 0 && ttl <= most, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn script_flush_mid_run_changes_nothing() {
    let redis = RedisServer::start();
    let a = limiter(RedisConfig::new(redis.url()));
    for i in 0..20 {
        if i == 10 {
            assert_eq!(redis.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
        }
        a.acquire(Cost::request(100, 0)).await.unwrap().keep();
    }
    assert!(!a.shared_store_down());
    let level: u64 = redis
        .cli(&["GET", "ratelimited:{openai:shared-model:tier-1}:tpm"])
        .trim()
        .parse()
        .unwrap();
    assert!(level > 0);
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed_with_a_typed_error_when_asked() {
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let a = limiter(RedisConfig::new(url).on_failure(OnFailure::Closed));
    let start = Instant::now();
    let err = a.acquire(Cost::request(1, 0)).await.unwrap_err();
    assert!(matches!(err, Error::BackendUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The breaker is open: the next call does not even try.
    let start = Instant::now();
    assert!(a.acquire(Cost::request(1, 0)).await.is_err());
    assert!(start.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_a_share_of_the_limit_by_default() {
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let a = limiter(RedisConfig::new(url).fallback_share(0.5));
    // Half of 6,000: 3,000 pass at once, and a request above it is too large locally.
    a.acquire(Cost::request(3_000, 0)).await.unwrap().keep();
    assert!(a.shared_store_down());
    let err = a.acquire(Cost::request(3_001, 0)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RequestTooLarge {
                capacity: 3_000,
                ..
            }
        ),
        "{err}"
    );
}

#[derive(Debug)]
struct CallError(Error);

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError(e)
    }
}

impl Classify for CallError {
    fn classify(&self) -> Verdict {
        self.0.classify()
    }
}

#[rate_limited(
    model = "shared-model",
    provider = "openai",
    tokens = 2_000,
    max_tokens = 0,
    retries = 0
)]
async fn annotated() -> Result<Value, CallError> {
    Ok(json!({"usage": {"prompt_tokens": 2_000, "completion_tokens": 0}}))
}

#[tokio::test]
async fn the_attribute_shares_limits_through_the_env_var() {
    let redis = RedisServer::start();
    let mut vars: Vec<(&str, String)> = LIMITS.iter().map(|(k, v)| (*k, v.to_string())).collect();
    vars.push(("RATE_LIMITED_REDIS_URL", redis.url()));
    // Another process took 5,000 of the 6,000 tokens.
    limiter(RedisConfig::new(redis.url()))
        .acquire(Cost::request(5_000, 0))
        .await
        .unwrap()
        .keep();
    let _registry = ratelimited::testing::fresh_registry_with_env(vars);
    let start = Instant::now();
    annotated().await.unwrap();
    // 1,000 more tokens had to refill at 100 per second.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(9_900) && waited < Duration::from_millis(11_500),
        "{waited:?}"
    );
}
