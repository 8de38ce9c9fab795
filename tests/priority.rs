//! Priority lanes in exact virtual time (paused tokio clock): a higher lane goes first, a lower
//! lane keeps its share, each lane stays FIFO, and only the waiter that goes next has a timer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{limiter::Cost, rate_limited, Limiter, Priority, Quota};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One admission: who, in which lane, when it arrived and when it got in.
#[derive(Clone, Copy, Debug)]
struct Admission {
    label: usize,
    priority: Priority,
    arrived: Duration,
    admitted: Duration,
}

type Log = Arc<Mutex<Vec<Admission>>>;

/// One request per second (60 RPM), its burst already used: the limiter is saturated.
async fn saturated() -> Limiter {
    let limiter = Limiter::new(Quota::default().rpm(60));
    for _ in 0..60 {
        limiter.acquire(Cost::request(0, 0)).await.unwrap().keep();
    }
    limiter
}

/// Starts a waiter and lets it take its place in the queue before returning.
async fn arrive(
    limiter: &Limiter,
    start: Instant,
    log: &Log,
    label: usize,
    priority: Priority,
) -> JoinHandle<()> {
    let (limiter, log) = (limiter.clone(), log.clone());
    let handle = tokio::spawn(async move {
        let arrived = start.elapsed();
        let reservation = limiter
            .acquire_with(Cost::request(0, 0), priority)
            .await
            .unwrap();
        log.lock().unwrap().push(Admission {
            label,
            priority,
            arrived,
            admitted: start.elapsed(),
        });
        reservation.keep();
    });
    // The current-thread runtime polls the new task before this one again.
    tokio::task::yield_now().await;
    handle
}

async fn join(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        handle.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn interactive_requests_overtake_a_saturated_batch_within_one_interval() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..200 {
        handles.push(arrive(&limiter, start, &log, label, Priority::Batch).await);
    }
    // Interactive requests at odd moments while the batch queue is long.
    let mut at = Duration::ZERO;
    for (label, arrival_ms) in [(1_000, 10_300), (1_001, 25_050), (1_002, 47_999)] {
        tokio::time::sleep(Duration::from_millis(arrival_ms) - at).await;
        at = Duration::from_millis(arrival_ms);
        handles.push(arrive(&limiter, start, &log, label, Priority::Interactive).await);
    }
    join(handles).await;
    let log = log.lock().unwrap();
    let interactive: Vec<_> = log
        .iter()
        .filter(|a| a.priority == Priority::Interactive)
        .map(|a| (a.label, a.arrived, a.admitted))
        .collect();
    let ms = Duration::from_millis;
    // Each goes at the next admission (one per second), ahead of ~190 queued batch requests.
    assert_eq!(
        interactive,
        [
            (1_000, ms(10_300), ms(11_000)),
            (1_001, ms(25_050), ms(26_000)),
            (1_002, ms(47_999), ms(48_000)),
        ]
    );
    // The batch still moves every other second: nothing is lost, one admission per second.
    assert_eq!(log.len(), 203);
    let last = log.iter().map(|a| a.admitted).max().unwrap();
    assert_eq!(last, Duration::from_secs(203));
}

/// Admissions of `log` in the order they happened, as lanes.
fn lanes_in_order(log: &[Admission]) -> Vec<Priority> {
    log.iter().map(|a| a.priority).collect()
}

#[tokio::test(start_paused = true)]
async fn the_batch_lane_keeps_its_share_under_a_steady_interactive_load() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..50 {
        handles.push(arrive(&limiter, start, &log, label, Priority::Batch).await);
    }
    // Two interactive requests a second: more than the limit, for 200 seconds.
    let interactive = tokio::spawn({
        let (limiter, log) = (limiter.clone(), log.clone());
        async move {
            let mut handles = Vec::new();
            for label in 0..400 {
                handles.push(
                    arrive(&limiter, start, &log, 1_000 + label, Priority::Interactive).await,
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            join(handles).await;
        }
    });
    join(handles).await;
    let log_now = log.lock().unwrap().clone();
    // Default share 10%: one batch admission in every ten, never more than nine in a row
    // passing it, until the 50 batch requests are through (at 500 s).
    let lanes = lanes_in_order(&log_now);
    let batch_at: Vec<usize> = lanes
        .iter()
        .enumerate()
        .filter(|(_, p)| **p == Priority::Batch)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(batch_at.len(), 50);
    // While interactive requests keep waiting (the first 400 admissions and more), every
    // tenth admission is a batch one; once they run out, the batch has the limiter to itself.
    let every_tenth: Vec<usize> = (0..40).map(|i| 10 * i + 9).collect();
    assert_eq!(batch_at[..40], every_tenth, "{lanes:?}");
    interactive.abort();
}

#[tokio::test(start_paused = true)]
async fn a_larger_lane_share_is_honoured() {
    let limiter = saturated().await;
    limiter.set_lane_share(0.25).unwrap();
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..10 {
        handles.push(arrive(&limiter, start, &log, label, Priority::Batch).await);
    }
    for label in 100..130 {
        handles.push(arrive(&limiter, start, &log, label, Priority::Interactive).await);
    }
    join(handles).await;
    let lanes = lanes_in_order(&log.lock().unwrap());
    // One in four: three interactive, then a batch.
    for chunk in lanes[..40].chunks(4) {
        assert_eq!(
            chunk,
            [
                Priority::Interactive,
                Priority::Interactive,
                Priority::Interactive,
                Priority::Batch
            ]
        );
    }
    let err = limiter.set_lane_share(0.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid lane share 0: expected a fraction in (0, 0.5], for example 0.1 for one \
         admission in ten"
    );
}

#[tokio::test(start_paused = true)]
async fn each_lane_is_fifo_and_lanes_go_highest_first() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    let lanes = [Priority::Batch, Priority::Normal, Priority::Interactive];
    for label in 0..30 {
        handles.push(arrive(&limiter, start, &log, label, lanes[label % 3]).await);
    }
    join(handles).await;
    let log = log.lock().unwrap();
    for lane in Priority::ALL {
        let labels: Vec<usize> = log
            .iter()
            .filter(|a| a.priority == lane)
            .map(|a| a.label)
            .collect();
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        assert_eq!(labels, sorted, "{lane} admitted out of arrival order");
        assert_eq!(labels.len(), 10);
    }
    // All waited from t = 0: interactive first, then normal (each lower lane taking its turn
    // after nine above it), then the rest.
    let order = lanes_in_order(&log);
    assert_eq!(&order[..9], [Priority::Interactive; 9]);
    assert_eq!(order[9], Priority::Normal, "{order:?}");
    // Admissions are one per second, whatever the lanes.
    let times: Vec<Duration> = log.iter().map(|a| a.admitted).collect();
    let expected: Vec<Duration> = (1..=30).map(Duration::from_secs).collect();
    assert_eq!(times, expected);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_gives_up_hands_the_turn_to_the_next_lane() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let batch = arrive(&limiter, start, &log, 0, Priority::Batch).await;
    // An interactive waiter becomes next, then gives up before its turn.
    let acquire = limiter.acquire_with(Cost::request(0, 0), Priority::Interactive);
    assert!(tokio::time::timeout(Duration::from_millis(500), acquire)
        .await
        .is_err());
    assert_eq!(limiter.waiting(), 1);
    batch.await.unwrap();
    assert_eq!(log.lock().unwrap()[0].admitted, Duration::from_secs(1));
}

/// The lane of an annotated function comes from `priority = ...`, any expression.
#[rate_limited(model = "openai/lane-model", priority = lane, retries = 0)]
async fn annotated(lane: Priority) -> Result<serde_json::Value, ratelimited::Error> {
    let _ = lane;
    Ok(serde_json::json!({}))
}

#[tokio::test(start_paused = true)]
async fn the_attribute_passes_its_priority_to_the_limiter() {
    let scope = fresh_registry_with_env([("RATE_LIMITED_LANE_MODEL_RPM", "60")]);
    let limiter = scope
        .registry()
        .limiter("openai/lane-model")
        .unwrap()
        .limiter;
    // Headroom 0.9: 54 requests of burst, then one every 60/54 s.
    for _ in 0..54 {
        limiter.acquire(Cost::request(0, 0)).await.unwrap().keep();
    }
    let start = Instant::now();
    let batch: Vec<_> = (0..5)
        .map(|_| tokio::spawn(annotated(Priority::Batch)))
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(limiter.waiting(), 5);
    annotated(Priority::Interactive).await.unwrap();
    // The next admission, 60/54 s on, rounded up to tokio's 1 ms timer tick.
    assert_eq!(start.elapsed(), Duration::from_millis(1_112));
    assert_eq!(limiter.waiting(), 5);
    for b in batch {
        b.await.unwrap().unwrap();
    }
}
