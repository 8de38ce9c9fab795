//! Many users on one key, in exact virtual time (paused tokio clock): tenants take turns by
//! weighted fair queuing on tokens within a lane, a tenant arriving late waits for about one
//! admission per tenant, not for another's queue, weights split a saturated family, caps hold
//! one tenant without holding the others, and idle tenants leave nothing behind.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ratelimited::limiter::{Acquire, Cost, Dimension, Window};
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{Error, Limiter, Priority, Quota, Tenant};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One admission: whose, which of its requests, how many admissions were logged when it
/// arrived, when it got in and what it cost.
#[derive(Clone, Debug)]
struct Admission {
    tenant: String,
    label: usize,
    arrived_after: usize,
    admitted: Duration,
    tokens: u64,
}

type Log = Arc<Mutex<Vec<Admission>>>;

/// 100 tokens per second (6,000 TPM), its burst already used: the family is saturated.
async fn saturated() -> Limiter {
    let limiter = Limiter::new(Quota::default().tpm(6_000));
    limiter
        .acquire(Cost::request(6_000, 0))
        .await
        .unwrap()
        .keep();
    limiter
}

/// Starts a waiter of `tenant` and lets it take its place in the queue before returning.
async fn arrive(
    limiter: &Limiter,
    start: Instant,
    log: &Log,
    (tenant, label, tokens): (&str, usize, u64),
    priority: Priority,
) -> JoinHandle<()> {
    let (limiter, log, tenant) = (limiter.clone(), log.clone(), tenant.to_owned());
    let handle = tokio::spawn(async move {
        let arrived_after = log.lock().unwrap().len();
        let reservation = limiter
            .acquire_for(Cost::request(tokens, 0), priority, &Tenant::from(&tenant))
            .await
            .unwrap();
        assert_eq!(reservation.tenant().map(Tenant::as_str), Some(&*tenant));
        log.lock().unwrap().push(Admission {
            tenant,
            label,
            arrived_after,
            admitted: start.elapsed(),
            tokens,
        });
        reservation.keep();
    });
    // The current-thread runtime polls the new task before this one again.
    tokio::task::yield_now().await;
    handle
}

fn admitted_by(log: &Log, tenant: &str, until: Duration) -> Vec<Admission> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|a| a.tenant == tenant && a.admitted <= until)
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_light_tenant_waits_for_one_admission_per_tenant_not_for_the_queue() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..1_000 {
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("import", label, 100),
                Priority::Normal,
            )
            .await,
        );
    }
    // Ten light tenants, one request each: five at the same moment, five alone, later on.
    let arrivals = [
        5_500, 5_500, 5_500, 5_500, 5_500, 12_250, 30_700, 31_100, 44_000, 59_900,
    ];
    let mut at = Duration::ZERO;
    for (light, arrival_ms) in arrivals.into_iter().enumerate() {
        let arrival = Duration::from_millis(arrival_ms);
        tokio::time::sleep(arrival - at).await;
        at = arrival;
        let tenant = format!("light-{light}");
        handles.push(arrive(&limiter, start, &log, (&tenant, 0, 100), Priority::Normal).await);
    }
    // A millisecond past the 70th second, so that its admission is in.
    tokio::time::sleep(Duration::from_millis(70_001) - at).await;

    let log = log.lock().unwrap().clone();
    for light in 0..10 {
        let tenant = format!("light-{light}");
        let index = log
            .iter()
            .position(|a| a.tenant == tenant)
            .unwrap_or_else(|| panic!("{tenant} was never admitted"));
        let waited_for = index + 1 - log[index].arrived_after;
        assert!(
            waited_for <= 11,
            "{tenant} arrived after {} admissions and was admission {}: {waited_for} admissions",
            log[index].arrived_after,
            index + 1
        );
    }
    // The five that came at once went in the next five admissions, the others at the next.
    let lights_at = |i: usize| log.iter().position(|a| a.tenant == format!("light-{i}"));
    let simultaneous: Vec<usize> = (0..5).map(|i| lights_at(i).unwrap() + 1).collect();
    let arrived = log[simultaneous[0] - 1].arrived_after;
    assert_eq!(
        simultaneous,
        (arrived + 1..=arrived + 5).collect::<Vec<_>>()
    );
    for i in 5..10 {
        let index = lights_at(i).unwrap();
        assert_eq!(index + 1 - log[index].arrived_after, 1, "light-{i}");
    }
    // The import kept its order and the rest of the family: one admission a second.
    let import: Vec<usize> = log
        .iter()
        .filter(|a| a.tenant == "import")
        .map(|a| a.label)
        .collect();
    assert!(import.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(import.len() + 10, log.len());
    assert_eq!(log.len(), 70);
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn weights_two_to_one_split_a_saturated_minute_two_to_one() {
    let limiter = saturated().await;
    limiter.set_tenant_weight(&Tenant::from("gold"), 2).unwrap();
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..300 {
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("gold", label, 100),
                Priority::Normal,
            )
            .await,
        );
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("free", label, 100),
                Priority::Normal,
            )
            .await,
        );
    }
    let minute = Duration::from_secs(60);
    tokio::time::sleep(minute + Duration::from_millis(1)).await;
    let (gold, free) = (
        admitted_by(&log, "gold", minute).len(),
        admitted_by(&log, "free", minute).len(),
    );
    assert_eq!(gold + free, 60, "the family stays saturated");
    assert!((39..=41).contains(&gold), "gold {gold}, free {free}");
    assert!((19..=21).contains(&free), "gold {gold}, free {free}");
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn the_share_counts_tokens_so_small_requests_go_twice_as_often() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..200 {
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("large", label, 200),
                Priority::Normal,
            )
            .await,
        );
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("small", label, 100),
                Priority::Normal,
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(120_001)).await;
    let two_minutes = Duration::from_secs(120);
    let tokens = |tenant| -> u64 {
        admitted_by(&log, tenant, two_minutes)
            .iter()
            .map(|a| a.tokens)
            .sum()
    };
    let (large, small) = (tokens("large"), tokens("small"));
    assert!(
        large + small >= 11_900,
        "the family stays saturated: {large} + {small}"
    );
    assert!(
        large.abs_diff(small) <= 200,
        "large {large} tokens, small {small} tokens"
    );
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_large_request_is_not_starved_by_its_own_tenants_small_ones() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    handles.push(arrive(&limiter, start, &log, ("mixed", 0, 3_000), Priority::Normal).await);
    for label in 1..50 {
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("mixed", label, 10),
                Priority::Normal,
            )
            .await,
        );
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("steady", label, 100),
                Priority::Normal,
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mixed = admitted_by(&log, "mixed", Duration::from_secs(60));
    assert_eq!(
        mixed[0].label, 0,
        "FIFO within a tenant: the large one first"
    );
    // The earliest tag (equal tags: the earlier arrival) goes first, as soon as its 3,000
    // tokens have refilled: 30 s.
    assert_eq!(mixed[0].admitted, Duration::from_secs(30));
    let steady = admitted_by(&log, "steady", Duration::from_secs(60));
    assert!(steady[0].admitted > mixed[0].admitted);
    assert!(mixed.windows(2).all(|w| w[0].label < w[1].label));
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn lanes_still_come_first_across_tenants() {
    let limiter = saturated().await;
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..20 {
        handles.push(arrive(&limiter, start, &log, ("bulk", label, 100), Priority::Batch).await);
    }
    for label in 0..5 {
        let tenant = format!("user-{label}");
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                (&tenant, label, 100),
                Priority::Interactive,
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(5_001)).await;
    let log = log.lock().unwrap().clone();
    let first: Vec<&str> = log.iter().take(5).map(|a| a.tenant.as_str()).collect();
    assert_eq!(first, ["user-0", "user-1", "user-2", "user-3", "user-4"]);
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_capped_tenant_never_exceeds_its_cap_in_any_window_while_the_others_use_the_rest() {
    let limiter = saturated().await;
    let cap = Quota {
        window: Window::Sliding,
        ..Quota::default().tpm(1_200)
    };
    limiter
        .set_tenant_cap(&Tenant::from("trial"), Some(cap))
        .unwrap();
    let start = Instant::now();
    let log = Log::default();
    let mut handles = Vec::new();
    for label in 0..200 {
        handles.push(
            arrive(
                &limiter,
                start,
                &log,
                ("trial", label, 100),
                Priority::Normal,
            )
            .await,
        );
    }
    for label in 0..200 {
        for tenant in ["a", "b"] {
            handles.push(
                arrive(
                    &limiter,
                    start,
                    &log,
                    (tenant, label, 100),
                    Priority::Normal,
                )
                .await,
            );
        }
    }
    let run = Duration::from_secs(180);
    tokio::time::sleep(run + Duration::from_millis(1)).await;

    let trial = admitted_by(&log, "trial", run);
    for first in &trial {
        let in_window: u64 = trial
            .iter()
            .filter(|a| {
                a.admitted >= first.admitted
                    && a.admitted < first.admitted + Duration::from_secs(60)
            })
            .map(|a| a.tokens)
            .sum();
        assert!(
            in_window <= 1_200,
            "{in_window} tokens in the minute from {:?}",
            first.admitted
        );
    }
    let trial_tokens: u64 = trial.iter().map(|a| a.tokens).sum();
    assert_eq!(trial_tokens, 3 * 1_200, "the cap is used in full");
    // The others took the rest: the family admitted its whole rate, one request a second.
    let all = log
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.admitted <= run)
        .count();
    assert_eq!(all, 180);
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_cap_holds_one_tenant_and_a_release_lets_it_go_on() {
    let limiter = Limiter::new(Quota::default().rpm(6_000));
    let cap = Quota::default().concurrency(2);
    let tenant = Tenant::from("agent");
    limiter.set_tenant_cap(&tenant, Some(cap)).unwrap();
    let first = limiter
        .acquire_for(Cost::request(1, 1), Priority::Normal, &tenant)
        .await
        .unwrap();
    let _second = limiter
        .acquire_for(Cost::request(1, 1), Priority::Normal, &tenant)
        .await
        .unwrap();
    assert_eq!(
        limiter.tenant_in_use(&tenant, Dimension::Concurrency),
        Some(2)
    );
    let third = tokio::spawn({
        let (limiter, tenant) = (limiter.clone(), tenant.clone());
        async move {
            limiter
                .acquire_for(Cost::request(1, 1), Priority::Normal, &tenant)
                .await
        }
    });
    tokio::task::yield_now().await;
    assert_eq!(limiter.waiting(), 1);
    // Another tenant goes straight past the capped one.
    let other = Tenant::from("other");
    tokio::time::timeout(
        Duration::from_millis(1),
        limiter.acquire_for(Cost::request(1, 1), Priority::Normal, &other),
    )
    .await
    .expect("not held back by the capped tenant")
    .unwrap()
    .keep();
    first.settle(ratelimited::Usage::new(1, 1));
    let third = third.await.unwrap().unwrap();
    assert_eq!(third.tenant(), Some(&tenant));
    assert_eq!(limiter.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_request_above_its_tenants_cap_fails_at_once() {
    let limiter = saturated().await;
    let tenant = Tenant::from(7_u64);
    limiter
        .set_tenant_cap(&tenant, Some(Quota::default().tpm(1_000)))
        .unwrap();
    // Someone is waiting, so the check is the one made on arrival behind a queue.
    let _queued = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            limiter
                .acquire(Cost::request(100, 0))
                .await
                .map(|r| r.keep())
        }
    });
    tokio::task::yield_now().await;
    let err = limiter
        .acquire_for(Cost::request(1_500, 0), Priority::Normal, &tenant)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RequestTooLarge {
                dimension: Dimension::TokensPerMinute,
                requested: 1_500,
                capacity: 1_000
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_weight_outside_its_range_is_refused_with_what_is_accepted() {
    let limiter = Limiter::new(Quota::default().rpm(60));
    for bad in [0, 1_001] {
        let err = limiter
            .set_tenant_weight(&Tenant::from("t"), bad)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a whole number from 1 to 1000"),
            "{err}"
        );
    }
    let bad_cap = Quota {
        tpm: Some(0),
        ..Quota::default()
    };
    assert!(limiter
        .set_tenant_cap(&Tenant::from("t"), Some(bad_cap))
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn the_default_cap_comes_from_the_family_variables() {
    let scope = fresh_registry_with_env([
        ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_TPM", "2_000"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_RPM", "10"),
    ]);
    let limiter = scope
        .registry()
        .limiter("openai/tenant-model")
        .unwrap()
        .limiter;
    let cap = limiter
        .tenant_cap(&Tenant::from("anyone"))
        .expect("a default cap");
    assert_eq!(
        (cap.tpm, cap.rpm, cap.headroom),
        (Some(2_000), Some(10), 1.0)
    );
    let tenant = Tenant::from("anyone");
    limiter
        .acquire_for(Cost::request(1_500, 0), Priority::Normal, &tenant)
        .await
        .unwrap()
        .keep();
    assert_eq!(
        limiter.tenant_in_use(&tenant, Dimension::TokensPerMinute),
        Some(1_500)
    );
    // 500 fit now; 1,000 more wait until the cap has refilled 500 (15 s at 2,000 a minute).
    let started = Instant::now();
    limiter
        .acquire_for(Cost::request(1_000, 0), Priority::Normal, &tenant)
        .await
        .unwrap()
        .keep();
    assert_eq!(started.elapsed(), Duration::from_secs(15));

    let scope = fresh_registry_with_env([
        ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_TPM", "2k"),
    ]);
    let err = scope
        .registry()
        .limiter("openai/tenant-model")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RATE_LIMITED_TENANT_MODEL_TENANT_TPM"),
        "{err}"
    );
    assert!(err.contains("a positive whole number"), "{err}");
}

/// Polls `future` once, with a waker that does nothing.
fn poll_once(future: &mut Pin<Box<Acquire>>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(future.as_mut().poll(&mut cx), Poll::Pending)
}

#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_tenants_leave_nothing_behind_once_idle() {
    let limiter = Limiter::new(Quota::default().rpm(6_000_000));
    limiter.hold_for(Duration::from_secs(1));
    let mut waiting: Vec<Pin<Box<Acquire>>> = (0..100_000_u64)
        .map(|id| {
            Box::pin(limiter.acquire_for(Cost::request(1, 1), Priority::Normal, &Tenant::from(id)))
        })
        .collect();
    assert!(waiting.iter_mut().all(poll_once));
    assert_eq!(limiter.waiting(), 100_000);
    assert_eq!(limiter.tenants_tracked(), 100_000);
    waiting.clear();
    assert_eq!(limiter.waiting(), 0);
    assert_eq!(
        limiter.tenants_tracked(),
        0,
        "a tenant without waiters is dropped"
    );

    // Capped tenants are kept until their caps refill, then swept as new tenants come.
    limiter
        .set_default_tenant_cap(Some(Quota::default().rpm(10)))
        .unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    for id in 0..100_000_u64 {
        limiter.try_acquire(Cost::request(1, 1)).unwrap().keep();
        limiter
            .acquire_for(Cost::request(1, 1), Priority::Normal, &Tenant::from(id))
            .await
            .unwrap()
            .keep();
    }
    assert_eq!(
        limiter.tenants_tracked(),
        100_000,
        "each cap is still refilling"
    );
    // A minute later every cap is full again: the tenants that come then drop two idle ones
    // each, as they arrive, and every one that leaves, two more.
    tokio::time::advance(Duration::from_secs(61)).await;
    for id in 0..50_000_u64 {
        let late = Tenant::from(format!("late-{id}"));
        limiter
            .acquire_for(Cost::request(1, 1), Priority::Normal, &late)
            .await
            .unwrap()
            .keep();
    }
    assert_eq!(
        limiter.tenants_tracked(),
        50_000,
        "only the late tenants are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn only_tenants_with_something_to_remember_are_kept() {
    let limiter = Limiter::new(Quota::default().tpm(60_000));
    let capped = Tenant::from("capped");
    limiter
        .set_tenant_cap(&capped, Some(Quota::default().tpm(1_000)))
        .unwrap();
    // An uncapped tenant that goes straight through leaves nothing, even with caps in use.
    let free = Tenant::from("free");
    let reservation = limiter
        .acquire_for(Cost::request(100, 0), Priority::Normal, &free)
        .await
        .unwrap();
    assert_eq!(limiter.tenants_tracked(), 0);
    reservation.keep();
    // A capped one is kept while its cap refills, and dropped once it is full again.
    limiter
        .acquire_for(Cost::request(500, 0), Priority::Normal, &capped)
        .await
        .unwrap()
        .keep();
    assert_eq!(limiter.tenants_tracked(), 1);
    assert_eq!(
        limiter.tenant_in_use(&capped, Dimension::TokensPerMinute),
        Some(500)
    );
    // A request its cap can never hold fails, and a new tenant's leaves nothing behind.
    let trial = Tenant::from("trial");
    limiter
        .set_tenant_cap(&trial, Some(Quota::default().tpm(1_000)))
        .unwrap();
    let err = limiter
        .acquire_for(Cost::request(2_000, 0), Priority::Normal, &trial)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RequestTooLarge { .. }), "{err:?}");
    assert_eq!(limiter.tenants_tracked(), 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    limiter
        .acquire_for(Cost::request(100, 0), Priority::Normal, &free)
        .await
        .unwrap()
        .keep();
    assert_eq!(
        limiter.tenants_tracked(),
        0,
        "the capped tenant's cap is full again"
    );
}
