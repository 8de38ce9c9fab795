//! Routing on a deployment pool through the limiter-level API (`Pool::acquire`), in paused
//! time with exact virtual instants: the forecast it routes by, strict order and its spill-over
//! threshold to the millisecond, FIFO across the pool, lanes, re-routing around a hold, and
//! pools defined by the environment.

use std::time::Duration;

use ratelimited::limiter::{Cost, Dimension, Forecast};
use ratelimited::pool::{DeploymentConfig, Pool, PoolConfig};
use ratelimited::{Limiter, Priority, Quota, Registry};
use tokio::time::Instant;

mod pool_support;
use pool_support::{Fleet, RPM};

fn pool(deployments: &[(&str, u64)], spill_after: Option<Duration>) -> Pool {
    let mut config = PoolConfig::new("p");
    for &(name, tpm) in deployments {
        config = config.deployment(
            DeploymentConfig::new(name, "openai/gpt-4o").quota(Quota::default().rpm(RPM).tpm(tpm)),
        );
    }
    if let Some(spill_after) = spill_after {
        config = config.spill_after(spill_after);
    }
    Registry::with_env([("RATE_LIMITED_TIER", "tier-1")])
        .with_pool(config)
        .pool("p")
        .unwrap()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[tokio::test(start_paused = true)]
async fn a_forecast_is_when_the_admission_would_be() {
    let limiter = Limiter::new(Quota::default().rpm(60).tpm(6_000));
    let cost = Cost::request(2_000, 1_000);
    let now = Instant::now();
    assert_eq!(limiter.forecast(&cost), Forecast::At(now));
    let _a = limiter.try_acquire(cost).unwrap();
    let _b = limiter.try_acquire(cost).unwrap();
    // 6,000 tokens in use of 6,000: 3,000 refill in 30 s.
    assert_eq!(
        limiter.forecast(&cost),
        Forecast::At(now + Duration::from_secs(30))
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(limiter.try_acquire(cost).is_ok());

    let capped = Limiter::new(Quota::default().tpm(6_000).concurrency(1));
    let start = Instant::now();
    capped.hold_for(Duration::from_secs(5));
    let small = Cost::request(10, 0);
    assert_eq!(
        capped.forecast(&small),
        Forecast::At(start + Duration::from_secs(5))
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let _slot = capped.try_acquire(small).unwrap();
    assert_eq!(
        capped.forecast(&small),
        Forecast::OnRelease {
            not_before: start + Duration::from_secs(5)
        }
    );
    assert_eq!(
        capped.forecast(&Cost::request(7_000, 0)),
        Forecast::TooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 7_000,
            capacity: 6_000
        }
    );
}

#[tokio::test(start_paused = true)]
async fn strict_order_keeps_the_first_until_the_wait_passes_the_threshold_to_the_millisecond() {
    // 60,000 TPM each: one token per millisecond.
    let pool = pool(&[("ptu", 60_000), ("paygo", 60_000)], Some(ms(250)));
    let start = Instant::now();
    let full = pool.acquire(Cost::request(60_000, 0)).await.unwrap();
    assert_eq!(full.deployment().name(), "ptu");
    // 250 tokens refill on the PTU in exactly 250 ms: the threshold, so it waits there.
    let at_threshold = pool.acquire(Cost::request(250, 0)).await.unwrap();
    assert_eq!(at_threshold.deployment().name(), "ptu");
    assert_eq!(start.elapsed(), ms(250));
    // 251 would wait 251 ms: it spills over at once.
    let over = pool.acquire(Cost::request(251, 0)).await.unwrap();
    assert_eq!(over.deployment().name(), "paygo");
    assert_eq!(start.elapsed(), ms(250));
    // And the PTU is first again as soon as it is within the threshold.
    let back = pool.acquire(Cost::request(250, 0)).await.unwrap();
    assert_eq!(
        (back.deployment().name(), start.elapsed()),
        ("ptu", ms(500))
    );
    let paygo = pool.deployment("paygo").unwrap().limiter();
    assert_eq!(paygo.in_use(Dimension::TokensPerMinute), Some(251 - 250));
}

#[tokio::test(start_paused = true)]
async fn in_strict_order_the_second_sees_no_traffic_until_the_first_is_saturated() {
    let fleet = Fleet::new(&[("ptu", 100_000), ("paygo", 50_000)], Some(ms(250)));
    let sizes = pool_support::workload(300);
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    let first_spill = outcomes
        .iter()
        .flat_map(|o| &o.visits)
        .filter(|(d, _)| d == "paygo")
        .map(|(_, at)| *at)
        .min()
        .unwrap();
    let ptu = fleet.provider("ptu");
    let t0 = ptu.created();
    let before: u64 = ptu
        .admissions()
        .iter()
        .filter(|a| a.at - t0 <= first_spill)
        .map(|a| a.tokens)
        .sum();
    // The PTU took its whole bucket and what refilled until then, less at most one call that
    // would have waited longer than 250 ms.
    let refilled = (100_000.0 * first_spill.as_secs_f64() / 60.0) as u64;
    println!(
        "first spill-over at {:.3} s, after the PTU admitted {before} tokens (bucket 100,000 + \
         {refilled} refilled)",
        first_spill.as_secs_f64()
    );
    assert!(
        before + 1_500 >= 100_000 + refilled,
        "{before} tokens on the PTU first"
    );
    for (_, provider) in &fleet.providers {
        assert_eq!(provider.stats().rate_limited, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_large_request_is_not_passed_by_small_ones_that_fit_a_smaller_deployment() {
    // 6,000 and 3,000 TPM: 100 and 50 tokens a second.
    let pool = pool(&[("big", 6_000), ("small", 3_000)], None);
    let start = Instant::now();
    let _a = pool.acquire(Cost::request(6_000, 0)).await.unwrap();
    let _b = pool.acquire(Cost::request(3_000, 0)).await.unwrap();
    // 5,000 fits only the big one, in 50 s; 100-token calls would fit the small one in 2 s.
    let large = tokio::spawn({
        let pool = pool.clone();
        async move {
            let r = pool.acquire(Cost::request(5_000, 0)).await.unwrap();
            (r.deployment().name().to_owned(), start.elapsed())
        }
    });
    tokio::task::yield_now().await;
    let smalls: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let r = pool.acquire(Cost::request(100, 0)).await.unwrap();
                let at = start.elapsed();
                r.keep();
                at
            })
        })
        .collect();
    let (deployment, at) = large.await.unwrap();
    assert_eq!((deployment.as_str(), at), ("big", Duration::from_secs(50)));
    for small in smalls {
        assert!(small.await.unwrap() >= Duration::from_secs(50));
    }
}

#[tokio::test(start_paused = true)]
async fn an_interactive_request_goes_ahead_of_the_batch_queued_on_the_pool() {
    // 100 and 50 tokens a second: 1,000 refill in 10 s on `a`, 20 s on `b`.
    let pool = pool(&[("a", 6_000), ("b", 3_000)], None);
    let start = Instant::now();
    let _a = pool.acquire(Cost::request(6_000, 0)).await.unwrap();
    let _b = pool.acquire(Cost::request(3_000, 0)).await.unwrap();
    let batch: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let r = pool
                    .acquire_with(Cost::request(1_000, 0), Priority::Batch)
                    .await;
                let r = r.unwrap();
                let at = (r.deployment().name().to_owned(), start.elapsed());
                r.keep();
                at
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The batch's head waits on `a` for 10 s; the interactive request takes that admission.
    let interactive = pool
        .acquire_with(Cost::request(1_000, 0), Priority::Interactive)
        .await
        .unwrap();
    assert_eq!(
        (interactive.deployment().name(), start.elapsed()),
        ("a", Duration::from_secs(10))
    );
    let mut batch_at = Vec::new();
    for b in batch {
        batch_at.push(b.await.unwrap());
    }
    let s = Duration::from_secs;
    // Then the soonest each time, ties to `a`: both free 1,000 at 40 s.
    let expected = [("a", s(20)), ("b", s(20)), ("a", s(30)), ("a", s(40))];
    let batch_at: Vec<_> = batch_at.iter().map(|(d, at)| (d.as_str(), *at)).collect();
    assert_eq!(batch_at, expected);
}

#[tokio::test(start_paused = true)]
async fn the_head_moves_when_its_deployment_is_held() {
    let pool = pool(&[("east", 12_000), ("west", 6_000)], None);
    let start = Instant::now();
    let _a = pool.acquire(Cost::request(12_000, 0)).await.unwrap();
    let _b = pool.acquire(Cost::request(6_000, 0)).await.unwrap();
    // 1,200 tokens: 6 s on east, 12 s on west. It waits on east...
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let r = pool.acquire(Cost::request(1_200, 0)).await.unwrap();
            (r.deployment().name().to_owned(), start.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // ... until a 429 holds east for 60 s: west admits it at 12 s.
    pool.hold_for("east", Duration::from_secs(60));
    assert_eq!(
        waiter.await.unwrap(),
        ("west".to_owned(), Duration::from_secs(12))
    );
}

#[tokio::test(start_paused = true)]
async fn a_pool_from_the_environment() {
    let registry = Registry::with_env([
        ("RATE_LIMITED_POOL_GPT_4O", "east,west"),
        ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_EAST_TPM", "100000"),
        (
            "RATE_LIMITED_EAST_ENDPOINT",
            "https://contoso-east.openai.azure.com",
        ),
        ("RATE_LIMITED_EAST_KEY_VAR", "AZURE_EAST_KEY"),
        ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_WEST_TPM", "50000"),
        ("RATE_LIMITED_POOL_GPT_4O_SPILL_AFTER_MS", "500"),
    ]);
    let pool = registry.pool("gpt-4o").unwrap();
    let east = pool.deployment("east").unwrap();
    assert_eq!(
        east.endpoint(),
        Some("https://contoso-east.openai.azure.com")
    );
    assert_eq!(east.key_var(), Some("AZURE_EAST_KEY"));
    assert_eq!(east.profile().quota.tpm, Some(100_000));
    assert_eq!(east.profile().quota.headroom, 0.9);
    assert_eq!(east.profile().family.to_string(), "azure/east");
    // Called directly, the Azure deployment `east` is the same limiter.
    let reservation = pool.acquire(Cost::request(1_000, 0)).await.unwrap();
    let direct = registry.limiter("azure/east").unwrap();
    assert_eq!(
        direct.limiter.in_use(Dimension::TokensPerMinute),
        Some(1_000)
    );
    drop(reservation);

    let missing = Registry::with_env([
        ("RATE_LIMITED_POOL_GPT_4O", "east,west"),
        ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_EAST_TPM", "100000"),
        ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
    ]);
    let err = missing.pool("gpt-4o").unwrap_err().to_string();
    assert!(err.contains("RATE_LIMITED_WEST_TPM"), "{err}");
    assert!(err.contains("deployment `west` of pool `gpt-4o`"), "{err}");
    let undefined = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let err = undefined.pool("gpt-4o").unwrap_err().to_string();
    assert!(err.contains("RATE_LIMITED_POOL_GPT_4O"), "{err}");
    let bad_tier = Registry::with_env([
        ("RATE_LIMITED_POOL_X", "proj-a"),
        ("RATE_LIMITED_PROJ_A_MODEL", "gpt-4o-mini"),
        ("RATE_LIMITED_PROJ_A_TIER", "tier-9"),
    ]);
    let err = bad_tier.pool("x").unwrap_err().to_string();
    assert!(err.contains("RATE_LIMITED_PROJ_A_TIER=\"tier-9\""), "{err}");
    assert!(err.contains("deployment `proj-a` of pool `x`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_call_too_large_for_every_deployment_is_refused_at_once_naming_each() {
    let pool = pool(&[("a", 6_000), ("b", 3_000)], None);
    let err = pool.acquire(Cost::request(7_000, 0)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no deployment of pool `p` can take this call: a: request too large: it needs 7000 \
         tokens per minute but the capacity is 6000 (limit times headroom); shorten the prompt, lower \
         max_tokens, or raise the limit; b: request too large: it needs 7000 tokens per minute but the \
         capacity is 3000 (limit times headroom); shorten the prompt, lower max_tokens, or raise \
         the limit"
    );
    // One that fits only `a` goes there.
    let fits = pool.acquire(Cost::request(5_000, 0)).await.unwrap();
    assert_eq!(fits.deployment().name(), "a");
}
