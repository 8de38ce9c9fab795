//! Limits that change, and limits read back from Redis (issue 18, items 4 and 11), against a
//! real `redis-server`: a lower limit keeps what is in use and a settle gives back exactly what
//! its reservation charged; learned limits that another writer left in `<tag>:limits` are
//! validated and bounded before any process adopts them.

use std::time::Duration;

use ratelimited::redis::RedisConfig;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{
    limiter::{Cost, Dimension},
    rate_limited, CallError, Usage,
};
use serde_json::{json, Value};

mod redis_support;
use redis_support::{eventually, RedisServer};

const MODEL: &str = "quota-model";
const TAG: &str = "ratelimited:{openai:quota-model:tier-1}";

/// Item 4: 1,000 tokens reserved at 6,000 TPM, the limit lowered to 3,000, then settled to
/// the 600 the server counts: Redis holds 600 tokens at the new limit (not 98: the lower limit
/// must not shrink the 1,000 in use, and the refund of 400 must not be counted at it).
#[tokio::test]
async fn item4_a_limit_change_keeps_the_units_in_use_and_a_settle_undoes_its_own_charge() {
    let redis = RedisServer::start();
    let limiter = RedisConfig::new(redis.url())
        .timeout(Duration::from_secs(2))
        .registry_with_env([
            ("RATE_LIMITED_QUOTA_MODEL_TPM", "6000"),
            ("RATE_LIMITED_HEADROOM", "1"),
        ])
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap()
        .limiter;
    let reservation = limiter.acquire(Cost::request(600, 400)).await.unwrap();
    let mut quota = limiter.quota();
    quota.set_limit(Dimension::TokensPerMinute, Some(3_000));
    limiter.set_quota(quota);
    reservation.settle(Usage::new(600, 0));
    // Sent after both updates on the same connection: once it is in Redis, so are they.
    limiter.hold_for(Duration::from_secs(2));
    eventually("the updates in Redis", || {
        !redis
            .cli(&["GET", &format!("{TAG}:hold")])
            .trim()
            .is_empty()
    })
    .await;
    let used = redis.units_in_use(&format!("{TAG}:tpm"), 3_000, Duration::from_secs(60));
    // 600, less what refilled since (50 a second).
    assert!(
        (590.0..=600.0).contains(&used),
        "{used} tokens in use at 3,000 TPM, 600 expected"
    );
}

#[rate_limited(
    model = "quota-model",
    provider = "openai",
    tokens = 10,
    max_tokens = 0
)]
async fn ask() -> Result<Value, CallError> {
    Ok(json!({"usage": {"prompt_tokens": 10, "completion_tokens": 0}}))
}

/// Runs one call of a process whose family finds `limits` (field, value, in this order) in
/// Redis and `correction` beside them, and returns once it adopted the valid RPM of 300 they
/// carry last: by then it has read and judged all of them.
async fn adopt_shared(limits: &[(&str, &str)], correction: Option<&str>) -> ratelimited::Limiter {
    let redis = RedisServer::start();
    let mut hset = vec!["HSET".to_owned(), format!("{TAG}:limits")];
    for (field, value) in limits.iter().chain([&("RPM", "300")]) {
        hset.extend([(*field).to_owned(), (*value).to_owned()]);
    }
    redis.cli(&hset.iter().map(String::as_str).collect::<Vec<_>>());
    if let Some(correction) = correction {
        redis.cli(&["SET", &format!("{TAG}:correction"), correction]);
    }
    let registry = fresh_registry_with_env([
        ("RATE_LIMITED_QUOTA_MODEL_RPM", "600".to_owned()),
        ("RATE_LIMITED_QUOTA_MODEL_TPM", "6000".to_owned()),
        ("RATE_LIMITED_QUOTA_MODEL_TPD", "100000".to_owned()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
        ("RATE_LIMITED_REDIS_URL", redis.url()),
        ("RATE_LIMITED_REDIS_TIMEOUT_MS", "2000".to_owned()),
    ]);
    ask().await.unwrap();
    let limiter = registry
        .registry()
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap()
        .limiter;
    eventually("the shared RPM of 300 adopted", || {
        limiter.quota().limit(Dimension::RequestsPerMinute) == Some(300)
    })
    .await;
    assert!(
        !limiter.shared_store_down(),
        "reading them opened the breaker"
    );
    limiter
}

/// Item 11: a foreign `0` is no limit: it is skipped (it used to panic the refresh task).
#[tokio::test]
async fn item11_a_foreign_zero_limit_is_skipped() {
    let limiter = adopt_shared(&[("TPM", "0")], None).await;
    assert_eq!(
        limiter.quota().limit(Dimension::TokensPerMinute),
        Some(6_000)
    );
}

/// Item 11: values that are not whole numbers are skipped, and reading them is no Redis
/// failure (it used to open the breaker every second).
#[tokio::test]
async fn item11_malformed_shared_values_are_skipped_and_redis_is_not_down() {
    let limiter = adopt_shared(&[("TPM", "abc"), ("TPD", "1.5")], Some("fast")).await;
    assert_eq!(
        limiter.quota().limit(Dimension::TokensPerMinute),
        Some(6_000)
    );
    assert_eq!(
        limiter.quota().limit(Dimension::TokensPerDay),
        Some(100_000)
    );
}

/// Item 11: a shared limit far below the configured one is not adopted from Redis (a process
/// whose own server reports it still learns it from its headers).
#[tokio::test]
async fn item11_a_shared_limit_far_below_the_configured_one_is_not_adopted() {
    let limiter = adopt_shared(&[("TPM", "1"), ("TPD", "100")], None).await;
    assert_eq!(
        limiter.quota().limit(Dimension::TokensPerMinute),
        Some(6_000)
    );
    assert_eq!(
        limiter.quota().limit(Dimension::TokensPerDay),
        Some(100_000)
    );
}
