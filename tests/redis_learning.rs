//! Learning as a fleet, against a real `redis-server`: a limit one process adopts from its
//! server's headers, and the charge correction it raises, reach the family's other processes
//! through Redis (each registry stands for one process).

use std::time::SystemTime;

use ratelimited::http::RateLimitHeaders;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{http::WithHeaders, limiter::Dimension, rate_limited, CallError};
use serde_json::{json, Value};

mod redis_support;
use redis_support::{eventually, RedisServer};

const MODEL: &str = "learning-model";

/// What the server answers.
#[derive(Clone, Copy)]
enum Server {
    /// The account has 3,000 TPM, not the configured 6,000.
    LowerTier,
    /// It counts 1,200 in use where the call reserved 1,000 (the tier is right).
    ChargesMore,
    /// No rate-limit headers.
    Silent,
    /// The configured 6,000 TPM.
    FullTier,
}

#[rate_limited(
    model = "learning-model",
    provider = "openai",
    tokens = 1_000,
    max_tokens = 0
)]
async fn ask(server: Server) -> Result<WithHeaders<Value>, CallError> {
    let headers = match server {
        Server::LowerTier => vec![
            ("x-ratelimit-limit-tokens", "3000"),
            ("x-ratelimit-remaining-tokens", "2000"),
        ],
        Server::ChargesMore => vec![
            ("x-ratelimit-limit-tokens", "6000"),
            ("x-ratelimit-remaining-tokens", "4800"),
        ],
        Server::Silent => Vec::new(),
        Server::FullTier => vec![
            ("x-ratelimit-limit-tokens", "6000"),
            ("x-ratelimit-remaining-tokens", "5000"),
        ],
    };
    Ok(WithHeaders {
        body: json!({"usage": {"prompt_tokens": 1_000, "completion_tokens": 0}}),
        headers: RateLimitHeaders::from_pairs(headers, SystemTime::now()),
    })
}

fn env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("RATE_LIMITED_LEARNING_MODEL_TPM", "6000".to_owned()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
        ("RATE_LIMITED_REDIS_URL", redis.url()),
    ]
}

#[tokio::test]
async fn a_learned_limit_and_correction_reach_the_familys_other_processes() {
    let redis = RedisServer::start();
    // Process A's server reports a higher count, then the lower limit.
    let factor = {
        let a = fresh_registry_with_env(env(&redis));
        ask(Server::ChargesMore).await.unwrap();
        let family = a
            .registry()
            .limiter_with(MODEL, Some("openai"), None)
            .unwrap();
        // The count is compared with what Redis held: one round trip later.
        eventually("A's correction", || family.charge_correction() > 1.0).await;
        let factor = family.charge_correction();
        assert!(factor > 1.15 && factor < 1.25, "{factor}");
        ask(Server::LowerTier).await.unwrap();
        assert_eq!(
            family.limiter.quota().limit(Dimension::TokensPerMinute),
            Some(3_000)
        );
        factor
    };
    eventually("the learned limit in Redis", || {
        redis
            .cli(&["KEYS", "ratelimited:{openai:learning-model:*}:limits"])
            .contains("limits")
    })
    .await;

    // Process B's own answers carry no headers: it learns only through Redis.
    let b = fresh_registry_with_env(env(&redis));
    let family = b
        .registry()
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap();
    assert_eq!(
        family.limiter.quota().limit(Dimension::TokensPerMinute),
        Some(6_000)
    );
    assert_eq!(family.charge_correction(), 1.0);
    ask(Server::Silent).await.unwrap();
    eventually("B adopting A's limit and correction", || {
        family.limiter.quota().limit(Dimension::TokensPerMinute) == Some(3_000)
            && (family.charge_correction() - factor).abs() < 0.01
    })
    .await;
}

#[tokio::test]
async fn what_is_shared_expires_and_carries_the_prefix() {
    let redis = RedisServer::start();
    let _a = fresh_registry_with_env(env(&redis));
    ask(Server::ChargesMore).await.unwrap();
    ask(Server::LowerTier).await.unwrap();
    eventually("both learning keys", || {
        let keys = redis.cli(&["KEYS", "*"]);
        keys.contains(":limits") && keys.contains(":correction")
    })
    .await;
    for key in redis.cli(&["KEYS", "*"]).lines() {
        assert!(
            key.starts_with("ratelimited:{openai:learning-model:"),
            "{key}"
        );
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
}

/// Issue 18, item 11: a limit shared in Redis below what a process's own server reports (a
/// stale value, or another application's, within the accepted range) is adopted at first, and
/// corrected by that process: it follows its own server and shares what it reports.
#[tokio::test]
async fn a_process_whose_server_reports_a_higher_limit_corrects_the_shared_one() {
    let redis = RedisServer::start();
    // Shared before this process starts: 3,000 for the family.
    let limits = "ratelimited:{openai:learning-model:tier-1}:limits";
    assert_eq!(redis.cli(&["HSET", limits, "TPM", "3000"]).trim(), "1");
    assert_eq!(redis.cli(&["PEXPIRE", limits, "60000"]).trim(), "1");
    let a = fresh_registry_with_env(env(&redis));
    let family = a
        .registry()
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap();
    // The first call reads what is shared.
    ask(Server::Silent).await.unwrap();
    eventually("the shared 3,000 adopted", || {
        family.limiter.quota().limit(Dimension::TokensPerMinute) == Some(3_000)
    })
    .await;
    ask(Server::FullTier).await.unwrap();
    eventually(
        "the shared limit corrected to what the server reports",
        || redis.cli(&["HGET", limits, "TPM"]).trim() == "6000",
    )
    .await;
    assert_eq!(
        family.limiter.quota().limit(Dimension::TokensPerMinute),
        Some(6_000)
    );
}
