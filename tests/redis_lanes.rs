//! With the Redis backend, one process's waiters are admitted in FIFO order within each lane,
//! and a later interactive waiter goes ahead of the ones still queued in this process. Real
//! time against a real `redis-server`: 100 tokens per second, about a second and a half.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ratelimited::redis::RedisConfig;
use ratelimited::{limiter::Cost, Priority};

mod redis_support;
use redis_support::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_admits_by_lane_then_in_arrival_order() {
    let redis = RedisServer::start();
    let limiter = RedisConfig::new(redis.url())
        .registry_with_env([
            ("RATE_LIMITED_LANES_MODEL_TPM", "6000"),
            ("RATE_LIMITED_HEADROOM", "1"),
        ])
        .limiter_with("lanes-model", Some("openai"), None)
        .unwrap()
        .limiter;
    // Spend the burst: every 10-token request now waits 0.1 s for the one before it.
    limiter
        .acquire(Cost::request(6_000, 0))
        .await
        .unwrap()
        .keep();
    let starts = Arc::new(Mutex::new(Vec::<(SystemTime, &str)>::new()));
    let waiter = |label: &'static str, priority: Priority| {
        let (limiter, starts) = (limiter.clone(), starts.clone());
        tokio::spawn(async move {
            let reservation = limiter
                .acquire_with(Cost::request(10, 0), priority)
                .await
                .unwrap();
            let start = reservation.shared_start().unwrap();
            starts.lock().unwrap().push((start, label));
            reservation.keep();
        })
    };
    let mut tasks = Vec::new();
    for label in ["n0", "n1", "n2", "n3", "b0", "b1"] {
        let priority = if label.starts_with('b') {
            Priority::Batch
        } else {
            Priority::Normal
        };
        tasks.push(waiter(label, priority));
        // Arrivals a few ms apart: their order is unambiguous.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tasks.push(waiter("i0", Priority::Interactive));
    for task in tasks {
        task.await.unwrap();
    }
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    let order: Vec<&str> = starts.iter().map(|(_, label)| *label).collect();
    // n0 asked Redis first and keeps its turn until its start (0.1 s); by then everyone is
    // queued here: the interactive one goes next, then normal in arrival order, then batch.
    assert_eq!(order, ["n0", "i0", "n1", "n2", "n3", "b0", "b1"]);
    // One admission every 0.1 s on the server's clock: lanes reorder, they never add room.
    for pair in starts.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0).unwrap();
        assert!(
            gap >= Duration::from_millis(100),
            "{gap:?} between {pair:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_gives_up_in_the_queue_is_never_charged() {
    let redis = RedisServer::start();
    let limiter = RedisConfig::new(redis.url())
        .registry_with_env([
            ("RATE_LIMITED_LANES_MODEL_TPM", "6000"),
            ("RATE_LIMITED_HEADROOM", "1"),
        ])
        .limiter_with("lanes-model", Some("openai"), None)
        .unwrap()
        .limiter;
    limiter
        .acquire(Cost::request(6_000, 0))
        .await
        .unwrap()
        .keep();
    let first = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire(Cost::request(10, 0)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Queued behind `first` (scheduled 0.1 s ahead), and gone before its turn.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(30),
        limiter.acquire(Cost::request(3_000, 0)),
    )
    .await;
    assert!(gave_up.is_err());
    let last = limiter.acquire(Cost::request(10, 0)).await.unwrap();
    let first = first.await.unwrap();
    let gap = last
        .shared_start()
        .unwrap()
        .duration_since(first.shared_start().unwrap())
        .unwrap();
    // 0.1 s for `first`'s 10 tokens; the 3,000 tokens given up would have added 30 s.
    assert_eq!(gap, Duration::from_millis(100));
}
