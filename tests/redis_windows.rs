//! A family whose server counts per window, or counts tokens after the response, shared by
//! several processes through a real `redis-server` (issue 19): the window logs and the
//! admission while not full live in the family's script, and a window learned by one process
//! is followed by the others. Each limiter stands for one process; the futures are polled by
//! hand, so what Redis scheduled is read before anyone waits for it.

use std::time::{Duration, SystemTime};

use ratelimited::http::{RateLimitHeaders, WithHeaders};
use ratelimited::limiter::{Cost, Dimension, Window};
use ratelimited::redis::RedisConfig;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{rate_limited, CallError, Error, Limiter, Usage};
use serde_json::{json, Value};

mod redis_support;
use redis_support::{epoch_us, eventually, shared_limiter, RedisServer, Woken};

const MODEL: &str = "window-model";
const TAG: &str = "ratelimited:{openai:window-model:tier-1}";

/// One process's limiter of the family, with `vars` at headroom 1.
fn limiter(redis: &RedisServer, vars: &[(&str, &str)]) -> Limiter {
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_secs(2));
    shared_limiter(config, MODEL, vars)
}

/// How far ahead Redis schedules `cost` on `limiter` (zero when admitted at once). The
/// reservation is given back afterwards.
async fn scheduled_wait(redis: &RedisServer, limiter: &Limiter, cost: Cost) -> Duration {
    let woken = Woken::new();
    let mut acquire = limiter.acquire(cost);
    if let std::task::Poll::Ready(reservation) = woken.poll(&mut acquire) {
        reservation.unwrap().cancel();
        return Duration::ZERO;
    }
    woken.notified().await;
    if let std::task::Poll::Ready(reservation) = woken.poll(&mut acquire) {
        reservation.unwrap().cancel();
        return Duration::ZERO;
    }
    // Admitted, and asleep until its start: Redis remembers it among those scheduled ahead.
    let ahead = redis.cli(&["HVALS", &format!("{TAG}:ahead")]);
    let start: u64 = ahead
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("nothing scheduled ahead: {ahead:?}"))
        .parse()
        .unwrap();
    drop(acquire);
    Duration::from_micros(start.saturating_sub(epoch_us()))
}

/// The units a window log holds (every slice).
fn logged(redis: &RedisServer, dimension: &str) -> u64 {
    redis
        .cli(&["HVALS", &format!("{TAG}:log:{dimension}")])
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap())
        .sum()
}

/// After one process spent a whole minute's 600 tokens, another's next 10 tokens wait until
/// that charge leaves the window (a minute, plus at most one half-second slice), not the
/// second a refilling bucket would give back; every key the logs add carries the family's
/// tag and an expiry.
#[tokio::test]
async fn a_window_shared_through_redis_holds_the_next_request_until_the_charge_leaves_it() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_WINDOW_MODEL_TPM", "600"),
        ("RATE_LIMITED_WINDOW_MODEL_WINDOW", "sliding"),
    ];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    assert_eq!(a.quota().window, Window::Sliding);
    a.acquire(Cost::request(600, 0)).await.unwrap().keep();
    assert_eq!(logged(&redis, "tpm"), 600);
    let wait = scheduled_wait(&redis, &b, Cost::request(10, 0)).await;
    println!("sliding: the next 10 tokens scheduled {wait:?} ahead");
    assert!(
        wait > Duration::from_millis(59_000) && wait <= Duration::from_millis(60_600),
        "{wait:?}"
    );
    for key in redis.cli(&["KEYS", "*"]).lines() {
        assert!(key.starts_with(TAG), "{key}");
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
}

/// The same with the continuous default: the bucket refills 10 tokens a second.
#[tokio::test]
async fn a_continuous_family_through_redis_refills_instead() {
    let redis = RedisServer::start();
    let vars = [("RATE_LIMITED_WINDOW_MODEL_TPM", "600")];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    a.acquire(Cost::request(600, 0)).await.unwrap().keep();
    let wait = scheduled_wait(&redis, &b, Cost::request(10, 0)).await;
    println!("continuous: the next 10 tokens scheduled {wait:?} ahead");
    assert!(wait <= Duration::from_millis(1_000), "{wait:?}");
    assert_eq!(logged(&redis, "tpm"), 0, "no log without a window");
}

/// A settle moves its own charge in the shared log: 600 reserved, 100 used, and another
/// process's 500 go at once; the next 10 wait for the window again.
#[tokio::test]
async fn a_settle_moves_its_charge_in_the_shared_log() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_WINDOW_MODEL_TPM", "600"),
        ("RATE_LIMITED_WINDOW_MODEL_WINDOW", "fixed"),
    ];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    let reservation = a.acquire(Cost::request(600, 0)).await.unwrap();
    reservation.settle(Usage::new(100, 0));
    eventually("the settle in the log", || logged(&redis, "tpm") == 100).await;
    let next = tokio::time::timeout(Duration::from_secs(5), b.acquire(Cost::request(500, 0)))
        .await
        .expect("the 500 tokens the settle gave back were not admitted at once")
        .unwrap();
    assert!(next.shared_start().unwrap() <= SystemTime::now() + Duration::from_secs(1));
    next.keep();
    assert_eq!(logged(&redis, "tpm"), 600);
    let wait = scheduled_wait(&redis, &a, Cost::request(10, 0)).await;
    assert!(wait > Duration::from_millis(59_000), "{wait:?}");
}

/// `RATE_LIMITED_<FAMILY>_CHARGED=response` through Redis: a request larger than the whole
/// minute is admitted while the bucket is not full (the server refuses only a full window),
/// and the next waits until what it charged has drained below full: (2,000 − 600) tokens at
/// 10 a second.
#[tokio::test]
async fn charged_after_the_response_through_redis_admits_while_not_full() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_WINDOW_MODEL_TPM", "600"),
        ("RATE_LIMITED_WINDOW_MODEL_CHARGED", "response"),
    ];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    tokio::time::timeout(Duration::from_secs(5), a.acquire(Cost::request(2_000, 0)))
        .await
        .expect("admitted at once on an empty bucket")
        .unwrap()
        .keep();
    let wait = scheduled_wait(&redis, &b, Cost::request(10, 0)).await;
    println!("charged after the response: the next request scheduled {wait:?} ahead");
    assert!(
        wait > Duration::from_millis(139_000) && wait <= Duration::from_millis(140_200),
        "{wait:?}"
    );

    // Charged on arrival (the default), the same request can never fit.
    let redis = RedisServer::start();
    let c = limiter(&redis, &[("RATE_LIMITED_WINDOW_MODEL_TPM", "600")]);
    let error = c.acquire(Cost::request(2_000, 0)).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::RequestTooLarge {
                dimension: Dimension::TokensPerMinute,
                ..
            }
        ),
        "{error}"
    );
}

#[rate_limited(
    model = "window-model",
    provider = "openai",
    tokens = 10,
    max_tokens = 0
)]
async fn ask(remaining: u64) -> Result<WithHeaders<Value>, CallError> {
    let remaining = remaining.to_string();
    Ok(WithHeaders {
        body: json!({"usage": {"prompt_tokens": 10, "completion_tokens": 0}}),
        headers: RateLimitHeaders::from_pairs(
            [
                ("x-ratelimit-limit-requests", "600"),
                ("x-ratelimit-remaining-requests", remaining.as_str()),
            ],
            SystemTime::now(),
        ),
    })
}

fn env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("RATE_LIMITED_WINDOW_MODEL_RPM", "600".to_owned()),
        ("RATE_LIMITED_WINDOW_MODEL_TPM", "100000".to_owned()),
        ("RATE_LIMITED_REDIS_URL", redis.url()),
    ]
}

/// One process sees its gateway's `remaining` jump back (a window turned over) and follows
/// the family as a window; another process, whose own answers show nothing, follows it too
/// through Redis.
#[tokio::test]
async fn a_window_learned_by_one_process_is_followed_by_the_others() {
    let redis = RedisServer::start();
    {
        let a = fresh_registry_with_env(env(&redis));
        let family = a
            .registry()
            .limiter_with(MODEL, Some("openai"), None)
            .unwrap();
        ask(100).await.unwrap();
        assert_eq!(family.limiter.quota().window, Window::Continuous);
        ask(550).await.unwrap();
        assert_eq!(family.limiter.quota().window, Window::Sliding);
    }
    eventually("the learned window in Redis", || {
        redis.cli(&["GET", &format!("{TAG}:window")]).trim() == "sliding"
    })
    .await;

    let b = fresh_registry_with_env(env(&redis));
    let family = b
        .registry()
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap();
    assert_eq!(family.limiter.quota().window, Window::Continuous);
    ask(540).await.unwrap();
    eventually("B following the window", || {
        family.limiter.quota().window == Window::Sliding
    })
    .await;
}
