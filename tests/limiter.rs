//! Exact virtual-time behaviour of the limiter (paused tokio clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimited::{
    limiter::{Cost, Dimension, TryAcquireError},
    Error, Limiter, Quota, Usage,
};
use tokio::time::Instant;

fn tokens(n: u64) -> Cost {
    Cost::request(n, 0)
}

#[tokio::test(start_paused = true)]
async fn five_ten_thousand_token_requests_at_thirty_thousand_tpm() {
    let limiter = Limiter::new(Quota::default().tpm(30_000));
    let start = Instant::now();
    let mut admitted = Vec::new();
    for _ in 0..5 {
        let reservation = limiter.acquire(tokens(10_000)).await.unwrap();
        admitted.push(start.elapsed());
        reservation.keep();
    }
    let s = Duration::from_secs;
    assert_eq!(admitted, [s(0), s(0), s(0), s(20), s(40)]);
}

#[tokio::test(start_paused = true)]
async fn a_request_over_capacity_fails_at_once() {
    let limiter = Limiter::new(Quota::default().tpm(30_000));
    let start = Instant::now();
    let err = limiter.acquire(tokens(30_001)).await.unwrap_err();
    assert_eq!(
        err,
        Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 30_001,
            capacity: 30_000
        }
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Exactly the capacity is fine.
    limiter.acquire(tokens(30_000)).await.unwrap().keep();
}

#[tokio::test(start_paused = true)]
async fn headroom_shrinks_rate_and_capacity() {
    let limiter = Limiter::new(Quota::default().rpm(10).headroom(0.5));
    let start = Instant::now();
    for _ in 0..6 {
        limiter.acquire(Cost::request(0, 0)).await.unwrap().keep();
    }
    // 5 requests of burst, then one every 12 s.
    assert_eq!(start.elapsed(), Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn a_large_request_is_not_starved_by_small_ones() {
    let limiter = Limiter::new(Quota::default().tpm(60_000));
    limiter.acquire(tokens(60_000)).await.unwrap().keep();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    // The big one arrives first, then a stream of small ones that would each fit earlier.
    for (i, size) in [50_000u64, 100, 100, 100].into_iter().enumerate() {
        let (limiter, order) = (limiter.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            limiter.acquire(tokens(size)).await.unwrap().keep();
            order.lock().unwrap().push((i, Instant::now()));
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap();
    let ids: Vec<_> = order.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_refund_lets_the_waiting_head_in_early() {
    let limiter = Limiter::new(Quota::default().tpm(10_000));
    let start = Instant::now();
    let first = limiter.acquire(tokens(10_000)).await.unwrap();
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire(tokens(5_000)).await.unwrap().keep();
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Used 4,000 of the 10,000 reserved: 6,000 come back, plus 1,000 refilled in 6 s.
    first.settle(Usage::new(4_000, 0));
    assert_eq!(waiter.await.unwrap(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn a_debit_pushes_the_next_request_back() {
    let limiter = Limiter::new(Quota::default().tpm(6_000));
    let start = Instant::now();
    let first = limiter.acquire(tokens(1_000)).await.unwrap();
    first.settle(Usage::new(1_000, 5_500)); // 500 over capacity: debt
    limiter.acquire(tokens(1_000)).await.unwrap().keep();
    // 6,500 in use, 1,000 more needs the level at 5,000: 1,500 tokens of refill = 15 s.
    assert_eq!(start.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn dropping_an_unsent_reservation_refunds_it_and_a_sent_one_keeps_it() {
    let limiter = Limiter::new(Quota::default().tpm(1_000).rpm(100));
    drop(limiter.acquire(tokens(800)).await.unwrap());
    assert_eq!(limiter.in_use(Dimension::TokensPerMinute), Some(0));
    assert_eq!(limiter.in_use(Dimension::RequestsPerMinute), Some(0));
    let mut sent = limiter.acquire(tokens(800)).await.unwrap();
    sent.mark_sent();
    drop(sent);
    assert_eq!(limiter.in_use(Dimension::TokensPerMinute), Some(800));
    assert_eq!(limiter.in_use(Dimension::RequestsPerMinute), Some(1));
}

#[tokio::test(start_paused = true)]
async fn concurrency_slots_are_released_on_drop_and_settle() {
    let limiter = Limiter::new(Quota::default().concurrency(2));
    let a = limiter.acquire(tokens(1)).await.unwrap();
    let b = limiter.acquire(tokens(1)).await.unwrap();
    assert!(matches!(
        limiter.try_acquire(tokens(1)),
        Err(TryAcquireError::WouldWait)
    ));
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.acquire(tokens(1)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!waiter.is_finished(), "no slot was free for an hour");
    a.settle(Usage::new(1, 0));
    let c = waiter.await.unwrap();
    drop(b);
    drop(c);
    assert_eq!(limiter.in_use(Dimension::Concurrency), Some(0));
}

#[tokio::test(start_paused = true)]
async fn minimum_interval_spaces_starts() {
    let limiter = Limiter::new(Quota::default().min_interval(Duration::from_millis(250)));
    let start = Instant::now();
    for _ in 0..5 {
        limiter.acquire(tokens(0)).await.unwrap().keep();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(1_000));
}

#[tokio::test(start_paused = true)]
async fn input_and_output_dimensions_are_charged_separately() {
    let limiter = Limiter::new(Quota::default().itpm(30_000).otpm(8_000));
    let start = Instant::now();
    limiter
        .acquire(Cost::request(1_000, 8_000))
        .await
        .unwrap()
        .keep();
    limiter
        .acquire(Cost::request(1_000, 4_000))
        .await
        .unwrap()
        .keep();
    // OTPM is the binding one: 4,000 of 8,000/min refill in 30 s.
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    let err = limiter.acquire(Cost::request(0, 8_001)).await.unwrap_err();
    assert!(matches!(
        err,
        Error::RequestTooLarge {
            dimension: Dimension::OutputTokensPerMinute,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_hold_delays_everyone_without_charging() {
    let limiter = Limiter::new(Quota::default().rpm(1_000));
    limiter.hold_for(Duration::from_millis(1_500));
    let start = Instant::now();
    limiter.acquire(tokens(0)).await.unwrap().keep();
    assert_eq!(start.elapsed(), Duration::from_millis(1_500));
    limiter.hold_for(Duration::from_millis(100));
    limiter.hold_for(Duration::ZERO); // a shorter hold never shortens a longer one
    limiter.acquire(tokens(0)).await.unwrap().keep();
    assert_eq!(start.elapsed(), Duration::from_millis(1_600));
}

#[tokio::test(start_paused = true)]
async fn changing_limits_at_runtime_keeps_what_is_in_use() {
    let limiter = Limiter::new(Quota::default().tpm(60_000));
    limiter.acquire(tokens(50_000)).await.unwrap().keep();
    let start = Instant::now();
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire(tokens(20_000)).await.unwrap().keep();
            start.elapsed()
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(limiter.waiting(), 1, "would fit in 10 s at 60,000 TPM");
    // Halve the limit: still 50,000 in use, now refilling at 30,000/min; 20,000 more fit
    // when the level is down to 10,000, 80 s from now.
    limiter.set_quota(Quota::default().tpm(30_000));
    assert_eq!(waiter.await.unwrap(), Duration::from_secs(80));
    // Raising it wakes the head at once.
    limiter.acquire(tokens(30_000)).await.unwrap().keep();
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire(tokens(10_000)).await.unwrap().keep();
            Instant::now()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let raised = Instant::now();
    limiter.set_quota(Quota::default().tpm(1_000_000));
    assert_eq!(waiter.await.unwrap(), raised);
}

#[tokio::test(start_paused = true)]
async fn lowering_a_limit_below_a_waiters_cost_fails_that_waiter() {
    let limiter = Limiter::new(Quota::default().tpm(10_000));
    limiter.acquire(tokens(10_000)).await.unwrap().keep();
    let waiter = {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.acquire(tokens(8_000)).await })
    };
    tokio::task::yield_now().await;
    limiter.set_quota(Quota::default().tpm(5_000));
    assert!(matches!(
        waiter.await.unwrap(),
        Err(Error::RequestTooLarge {
            capacity: 5_000,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn one_release_wakes_only_the_head() {
    // Count polls: with 100 waiters blocked on concurrency, each release must poll O(1) waiters.
    let limiter = Limiter::new(Quota::default().concurrency(1));
    let held = limiter.acquire(tokens(1)).await.unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (limiter, polls) = (limiter.clone(), polls.clone());
        tasks.push(tokio::spawn(async move {
            let mut acquire = std::pin::pin!(limiter.acquire(tokens(1)));
            let reservation = std::future::poll_fn(|cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                acquire.as_mut().poll(cx)
            })
            .await
            .unwrap();
            reservation.keep();
        }));
    }
    while limiter.waiting() < 100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(polls.load(Ordering::Relaxed), 100);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    // Each waiter is polled once to enqueue and once when it becomes head.
    assert_eq!(polls.load(Ordering::Relaxed), 200);
}

use std::future::Future;
