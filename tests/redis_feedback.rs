//! The header feedback of a family whose buckets live in Redis (issue 18, item 7), against a
//! real `redis-server` and a scripted server that counts exactly: the server's count is read
//! against where Redis stood just after the request's charge (its mark, on the server's
//! clock), not as of the answer, so the shared buckets follow the server whatever the
//! request's latency, and the charge correction stays at 1.0.

use std::time::Duration;

use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{http::WithHeaders, rate_limited, CallError, Registry};
use serde_json::Value;

mod header_feedback_support;
mod redis_support;
use header_feedback_support::{ExactServer, Style};
use redis_support::{eventually, RedisServer};

const GPT: &str = "gpt-4o-mini";
const TPM_KEY: &str = "ratelimited:{openai:gpt-4o-mini:tier-1}:tpm";
const MINUTE: Duration = Duration::from_secs(60);

#[rate_limited(model = "gpt-4o-mini", tokens = prompt, max_tokens = max_tokens)]
async fn ask(
    server: &ExactServer,
    prompt: u64,
    max_tokens: u64,
) -> Result<WithHeaders<Value>, CallError> {
    server
        .chat(prompt, max_tokens)
        .await
        .map_err(CallError::from)
}

/// A registry sharing GPT's limits (1,000 RPM, 60,000 TPM, headroom 1) through `redis`.
fn shared_registry(redis: &RedisServer) -> ratelimited::testing::ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "1000".to_owned()),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "60000".to_owned()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
        ("RATE_LIMITED_REDIS_URL", redis.url()),
    ])
}

fn correction() -> f64 {
    Registry::current()
        .limiter(GPT)
        .unwrap()
        .charge_correction()
}

/// Three calls in turn, half a second on the server each (500 tokens of refill at 60,000 TPM):
/// after each, Redis holds what the server holds, within the refill of a few milliseconds,
/// and the correction is 1.0. Read as of the answer, the count would sit 500 tokens above the
/// server's and raise the correction to its cap.
#[tokio::test]
async fn item7_a_shared_family_follows_an_exact_server_whatever_the_latency() {
    let redis = RedisServer::start();
    let _registry = shared_registry(&redis);
    let server = ExactServer::openai(Style::OpenAi, 1_000, 60_000).timing(
        Duration::from_millis(5),
        Duration::from_millis(500),
        Duration::from_millis(5),
    );
    // Loaded now, so that every script call below is one EVALSHA on the server.
    let script = include_str!("../runtime/src/store/family.lua");
    assert_eq!(redis.cli(&["SCRIPT", "LOAD", script]).trim().len(), 40);
    for call in 0..3 {
        ask(&server, 2_000, 200).await.unwrap();
        // The reservation, then the two tightenings (requests, tokens): nothing to settle.
        eventually("the call's tightenings to reach Redis", || {
            redis.calls("evalsha") == 3 * (call + 1)
        })
        .await;
        let shared = redis.units_in_use(TPM_KEY, 60_000, MINUTE);
        let exact = server.tokens_in_use();
        println!("call {call}: Redis {shared:.0}, server {exact}");
        // 50 tokens: the refill of the few ms between the two readings and on the wire.
        assert!(
            (shared - exact as f64).abs() <= 50.0,
            "call {call}: Redis holds {shared:.0}, the server {exact}"
        );
        assert_eq!(correction(), 1.0, "call {call}");
    }
    assert_eq!(server.rejected(), 0);
}

/// A server that counts a fifth more of each prompt than was charged: what it holds beyond the
/// mark and the charges since is real, and raises the correction, below its cap.
#[tokio::test]
async fn item7_a_server_that_counts_a_fifth_more_is_still_followed() {
    let redis = RedisServer::start();
    let _registry = shared_registry(&redis);
    let server = ExactServer::openai(Style::OpenAi, 1_000, 60_000)
        .timing(
            Duration::from_millis(5),
            Duration::from_millis(200),
            Duration::from_millis(5),
        )
        .overcharging(120);
    for _ in 0..3 {
        ask(&server, 2_000, 0).await.unwrap();
    }
    eventually("the correction to rise", || correction() > 1.0).await;
    let factor = correction();
    println!("correction {factor}");
    assert!(factor > 1.15 && factor < 1.25, "{factor}");
    assert_eq!(server.rejected(), 0);
}
