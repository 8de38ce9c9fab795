//! Property test of the Redis backend against a real `redis-server`: many concurrent
//! reservations and settles (refunds), from several tasks of two registries (as two processes
//! would hold them), never admit more than the limit in any window.
//!
//! Exact on the server's own timeline: each reservation says when it starts on the server's
//! clock ([`Reservation::shared_start`]), and a reference bucket replays the admissions with
//! the script's own integer math (a charge of `units` moves the bucket's theoretical arrival
//! time by `ceil(units × window / capacity)` µs). A settle is replayed at the moment the test
//! called it: the server applies it a little later, so the reference never has less room than
//! the server had, and a failure is a real overshoot. Redis runs on this machine, so its
//! `TIME` and `SystemTime` read the same clock.
//!
//! The rates are high (100,000 tokens per second) so each case takes about a second of real
//! time; the burst is spent first, so the limit binds from the start.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use ratelimited::redis::RedisConfig;
use ratelimited::{limiter::Cost, Limiter, Usage};

mod redis_support;
use redis_support::RedisServer;

/// Tokens per minute at headroom 1: 100,000 per second.
const TPM: u64 = 6_000_000;
const WINDOW_US: i128 = 60_000_000;

fn limiter(url: &str) -> Limiter {
    RedisConfig::new(url.to_owned())
        .registry_with_env([
            ("RATE_LIMITED_PROPS_MODEL_TPM", TPM.to_string()),
            ("RATE_LIMITED_HEADROOM", "1".to_owned()),
        ])
        .limiter_with("props-model", Some("openai"), None)
        .unwrap()
        .limiter
}

fn micros(at: SystemTime) -> i128 {
    i128::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// The script's share of a bucket for `units`.
fn share(units: u64) -> i128 {
    (i128::from(units) * WINDOW_US + i128::from(TPM) - 1) / i128::from(TPM)
}

#[derive(Clone, Copy, Debug)]
enum Event {
    /// Admitted at its start, charging `tokens`.
    Admit { tokens: u64, task: usize },
    /// Settled to `used` out of `tokens`.
    Refund { tokens: u64, used: u64 },
}

/// One task's reservations: (tokens, used per mille).
type Plan = Vec<(u64, u64)>;

async fn run(url: String, plans: Vec<Plan>) -> Vec<(i128, Event)> {
    let processes = [limiter(&url), limiter(&url)];
    // Spend the burst: from here on, the limit binds.
    let burst = processes[0].acquire(Cost::request(TPM, 0)).await.unwrap();
    let log = Arc::new(Mutex::new(vec![(
        micros(burst.shared_start().unwrap()),
        Event::Admit {
            tokens: TPM,
            task: usize::MAX,
        },
    )]));
    burst.keep();
    let tasks: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(task, plan)| {
            let (limiter, log) = (processes[task % 2].clone(), log.clone());
            tokio::spawn(async move {
                for (tokens, permille) in plan {
                    let reservation = limiter.acquire(Cost::request(tokens, 0)).await.unwrap();
                    let start = reservation
                        .shared_start()
                        .expect("taken through Redis, not the fallback");
                    log.lock()
                        .unwrap()
                        .push((micros(start), Event::Admit { tokens, task }));
                    let used = tokens * permille / 1_000;
                    log.lock()
                        .unwrap()
                        .push((micros(SystemTime::now()), Event::Refund { tokens, used }));
                    reservation.settle(Usage::new(used, 0));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut events = log.lock().unwrap().clone();
    events.sort_by_key(|&(at, _)| at);
    events
}

/// Replays `events` through the script's bucket: every admission must fit at its start.
fn check(events: &[(i128, Event)]) -> Result<usize, TestCaseError> {
    // The theoretical arrival time: the bucket is full again then (long ago: it starts full).
    let mut tat = 0;
    let mut admitted = 0;
    for &(at, event) in events {
        match event {
            Event::Admit { tokens, task } => {
                tat = tat.max(at);
                let over = tat + share(tokens) - WINDOW_US - at;
                prop_assert!(
                    over <= 0,
                    "task {task}'s {tokens} tokens admitted at {at} µs, {over} µs before the \
                     bucket had room"
                );
                tat += share(tokens);
                admitted += 1;
            }
            Event::Refund { tokens, used } => {
                tat = at.max(tat.max(at) + share(used) - share(tokens));
            }
        }
    }
    Ok(admitted)
}

fn plan() -> impl Strategy<Value = Plan> {
    prop::collection::vec((500..5_000u64, 0..=1_000u64), 8..16)
}

proptest! {
    // Real time, about a second a case.
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_reserves_and_settles_never_exceed_the_server_bucket(
        plans in prop::collection::vec(plan(), 6),
    ) {
        let redis = RedisServer::start();
        let expected: usize = plans.iter().map(Vec::len).sum();
        let events = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(redis.url(), plans));
        prop_assert_eq!(check(&events)?, expected + 1);
    }
}

/// The check can fail: 100,000 tokens 10 µs after the whole burst is an overshoot.
#[test]
fn the_reference_catches_an_overshoot() {
    let events = [
        (
            0,
            Event::Admit {
                tokens: TPM,
                task: 0,
            },
        ),
        (
            10,
            Event::Admit {
                tokens: 100_000,
                task: 1,
            },
        ),
    ];
    let err = check(&events).unwrap_err();
    assert!(
        err.to_string().contains("before the bucket had room"),
        "{err}"
    );
}
