//! Dropping waiters at random points loses nothing: the rest are admitted, no in-flight slot
//! leaks, and the whole capacity comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ratelimited::{
    limiter::{Cost, Dimension},
    Limiter, Quota, Usage,
};
use tokio::time::Instant;

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_waiters_half_dropped_at_random_points() {
    let quota = Quota::default().rpm(600).tpm(60_000).concurrency(8);
    let limiter = Limiter::new(quota);
    let mut rng = Lcg(0x5eed);
    let admitted = Arc::new(AtomicU64::new(0));
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..1_000u64 {
        let cost = Cost::request(1 + rng.below(2_000), rng.below(1_000));
        let drop_after = (i % 2 == 1).then(|| Duration::from_millis(rng.below(120_000)));
        let drop_after_admission = rng.below(4) == 0;
        let hold = Duration::from_millis(rng.below(3_000));
        let (limiter, admitted) = (limiter.clone(), admitted.clone());
        let task = tokio::spawn(async move {
            let acquire = limiter.acquire(cost);
            let reservation = match drop_after {
                // Dropped while queued, at the head, or never waiting at all.
                Some(after) => match tokio::time::timeout(after, acquire).await {
                    Ok(reservation) => reservation.unwrap(),
                    Err(_) => return false,
                },
                None => acquire.await.unwrap(),
            };
            admitted.fetch_add(1, Ordering::Relaxed);
            if drop_after.is_some() && drop_after_admission {
                drop(reservation); // admitted, then cancelled before sending: full refund
                return true;
            }
            tokio::time::sleep(hold).await;
            reservation.settle(Usage::new(cost.input_tokens, cost.output_tokens / 2));
            true
        });
        if drop_after.is_some() {
            dropped.push(task);
        } else {
            keep.push(task);
        }
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
        }
    }
    for task in keep {
        assert!(
            task.await.unwrap(),
            "a waiter that was never dropped was not admitted"
        );
    }
    let mut admitted_then_dropped = 0;
    for task in dropped {
        admitted_then_dropped += u64::from(task.await.unwrap());
    }
    assert!(
        admitted_then_dropped > 0 && admitted_then_dropped < 500,
        "drops should hit both queued and admitted requests, got {admitted_then_dropped}"
    );
    assert_eq!(
        admitted.load(Ordering::Relaxed),
        500 + admitted_then_dropped
    );
    assert_eq!(limiter.waiting(), 0);
    assert_eq!(
        limiter.in_use(Dimension::Concurrency),
        Some(0),
        "a slot leaked"
    );

    // One window later the buckets are full again: the whole capacity goes through at once.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(limiter.in_use(Dimension::TokensPerMinute), Some(0));
    assert_eq!(limiter.in_use(Dimension::RequestsPerMinute), Some(0));
    let start = Instant::now();
    limiter
        .acquire(Cost::request(60_000, 0))
        .await
        .unwrap()
        .keep();
    assert_eq!(start.elapsed(), Duration::ZERO);
}
