//! `#[rate_limited(pool = .., deployment = .., tenant = ..)]` end to end, in paused time, on a
//! pool of two deployments (`east` and `west`, each behind a `MockProvider` with its limits):
//! the pool's queue takes turns by tenant, a tenant at its cap on every deployment sits out
//! while the others go, and a tenant's budget on each deployment's family refuses naming the
//! tenant. Every call costs 1,000 tokens (no output), so a deployment of 60,000 TPM admits
//! one a second once its first minute's burst has gone.

use std::sync::Arc;
use std::time::Duration;

use ratelimited::limiter::Cost;
use ratelimited::pool::Deployment;
use ratelimited::testing::{MockProvider, MockRequest, MockResponse};
use ratelimited::{rate_limited, Error, Priority, Quota, Tenant, Usage};
use tokio::time::Instant;

mod pool_support;
use pool_support::*;

#[path = "warnings_support/mod.rs"]
mod warnings_support;
use warnings_support::Warnings;

/// Tokens per minute of each deployment: 60 calls a minute each.
const TPM: u64 = 60_000;

const PAIR: [(&str, u64); 2] = [("east", TPM), ("west", TPM)];

/// The mock serving a deployment.
struct Mocks(Vec<(String, MockProvider)>);

impl Mocks {
    fn of(fleet: &Fleet) -> Arc<Mocks> {
        Arc::new(Mocks(fleet.providers.clone()))
    }

    fn at(&self, deployment: &Deployment) -> &MockProvider {
        &self
            .0
            .iter()
            .find(|(name, _)| name == deployment.name())
            .expect("a mock per deployment")
            .1
    }
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tenant = user, tokens = 1_000, max_tokens = 0)]
async fn ask(mocks: &Mocks, user: &str) -> Result<MockResponse, ApiError> {
    let _ = user;
    mocks
        .at(deployment)
        .chat(&MockRequest::new("gpt-4o", 1_000).max_tokens(0))
        .await
        .map_err(ApiError::Http)
}

/// Fires `count` calls of `user` at once; each returns when it finished, from `start`.
fn fire(
    mocks: &Arc<Mocks>,
    user: &'static str,
    count: usize,
    start: Instant,
) -> Vec<tokio::task::JoinHandle<Duration>> {
    (0..count)
        .map(|_| {
            let mocks = Arc::clone(mocks);
            tokio::spawn(async move {
                ask(&mocks, user).await.expect("the call succeeds");
                start.elapsed()
            })
        })
        .collect()
}

async fn finished(calls: Vec<tokio::task::JoinHandle<Duration>>) -> Vec<Duration> {
    let mut out = Vec::new();
    for call in calls {
        out.push(call.await.unwrap());
    }
    out.sort();
    out
}

/// How long `tenant`'s admitted calls waited in all, as both deployments' families count it.
fn tenant_wait(fleet: &Fleet, tenant: &str) -> Duration {
    let stats = fleet.registry.stats();
    PAIR.iter()
        .filter_map(|(name, _)| {
            let family = stats.family(name).expect("a family per deployment");
            family
                .top_tenants_by_wait
                .iter()
                .find(|t| t.tenant == tenant)
                .map(|t| t.total_wait)
        })
        .sum()
}

/// What the families of both deployments counted for `tenant`: (admitted, tokens).
fn tenant_counts(fleet: &Fleet, tenant: &str) -> (u64, u64) {
    let stats = fleet.registry.stats();
    PAIR.iter()
        .filter_map(|(name, _)| {
            let family = stats.family(name).expect("a family per deployment");
            family
                .top_tenants_by_tokens
                .iter()
                .find(|t| t.tenant == tenant)
                .map(|t| (t.admitted, t.tokens))
        })
        .fold((0, 0), |(a, t), (a2, t2)| (a + a2, t + t2))
}

/// An import of 300 calls queued at once by one tenant: the two deployments take 120 at once
/// (each its minute's burst), then one a second each, on the second. Another tenant's call
/// 10.25 s in is admitted at the next admission (at 11 s, when both deployments have refilled
/// a call's tokens), not behind the 160 calls of the import still queued (80 s of them).
#[tokio::test(start_paused = true)]
async fn another_tenants_call_goes_next_not_behind_the_import() {
    let fleet = Fleet::new(&PAIR, None);
    let _scope = fleet.registry.scope();
    let mocks = Mocks::of(&fleet);
    let start = Instant::now();
    let import = fire(&mocks, "import", 300, start);
    tokio::time::sleep(Duration::from_millis(10_250)).await;
    let arrived = Instant::now();
    ask(&mocks, "alice").await.unwrap();
    let waited = arrived.elapsed();
    let pool = fleet.registry.pool("gpt-4o").unwrap();
    let queued = pool.stats().waiting;
    println!("alice waited {waited:?} behind an import of 300, {queued} of it still queued");
    assert_eq!(waited, Duration::from_millis(750));
    assert!(queued >= 150, "{queued}");

    let import = finished(import).await;
    // The import lost one admission to her: its last call went at 91 s, where alone its 180
    // calls after the burst would have ended at 90 s.
    let last = *import.last().unwrap();
    println!("the import's last call finished at {last:?}");
    assert_eq!(last, Duration::from_secs(91));
    assert_eq!(tenant_counts(&fleet, "alice"), (1, 1_000));
    // Her wait in the pool's queue is her wait in the stats.
    assert_eq!(tenant_wait(&fleet, "alice"), Duration::from_millis(750));
    assert_eq!(tenant_counts(&fleet, "import"), (300, 300_000));
    for (_, provider) in &fleet.providers {
        assert_eq!(provider.stats().rate_limited, 0);
        provider.assert_within_limits();
    }
}

/// A tenant capped at 2 requests a minute on each deployment fires 6 calls, then another
/// tenant 6: the capped tenant's first 4 go at once (2 per deployment), its last 2 sit out
/// until its caps refill (30 s), and meanwhile the other tenant's 6 all go at once, though
/// they queued behind them.
#[tokio::test(start_paused = true)]
async fn a_tenant_at_its_caps_sits_out_while_another_goes_on() {
    let fleet = Fleet::new(&PAIR, None);
    let _scope = fleet.registry.scope();
    let pool = fleet.registry.pool("gpt-4o").unwrap();
    let capped = Tenant::from("capped");
    for deployment in pool.deployments() {
        deployment
            .limiter()
            .set_tenant_cap(&capped, Some(Quota::default().rpm(2)))
            .unwrap();
    }
    let mocks = Mocks::of(&fleet);
    let start = Instant::now();
    let capped_calls = fire(&mocks, "capped", 6, start);
    tokio::task::yield_now().await;
    let other_calls = fire(&mocks, "other", 6, start);
    let capped_done = finished(capped_calls).await;
    let other_done = finished(other_calls).await;
    println!("capped finished at {capped_done:?}, the other at {other_done:?}");
    assert_eq!(other_done, vec![Duration::ZERO; 6]);
    assert_eq!(capped_done[..4], [Duration::ZERO; 4]);
    assert_eq!(capped_done[4..], [Duration::from_secs(30); 2]);
    // Each deployment took 2 + 1 of the capped tenant's calls.
    for deployment in pool.deployments() {
        let family = fleet.registry.stats();
        let family = family.family(deployment.name()).unwrap();
        let counted = family
            .top_tenants_by_tokens
            .iter()
            .find(|t| t.tenant == "capped")
            .unwrap();
        assert_eq!(counted.admitted, 3, "{}", deployment.name());
    }
    assert_eq!(tenant_counts(&fleet, "other"), (6, 6_000));
    assert_eq!(tenant_wait(&fleet, "capped"), Duration::from_secs(60));
    assert_eq!(tenant_wait(&fleet, "other"), Duration::ZERO);
}

/// Each deployment's family gives every tenant 1,500 tokens: a tenant's first call goes to
/// east, its second (east's budget has 500 left) to west, and its third is refused at once by
/// both, naming the tenant, while another tenant's call still goes.
#[tokio::test(start_paused = true)]
async fn a_tenant_budget_refuses_naming_the_tenant() {
    let (warnings, _guard) = Warnings::catch();
    let fleet = Fleet::with_env(
        &PAIR,
        None,
        &[
            ("RATE_LIMITED_EAST_TENANT_BUDGET_TOKENS", "1500"),
            ("RATE_LIMITED_WEST_TENANT_BUDGET_TOKENS", "1500"),
            // A cap that never binds here: a deployment's tenant caps come from its own name.
            ("RATE_LIMITED_EAST_TENANT_TPM", "600000"),
        ],
    );
    let pool = fleet.registry.pool("gpt-4o").unwrap();
    let trial = Tenant::from("trial");
    assert_eq!(
        pool.deployment("east")
            .unwrap()
            .limiter()
            .tenant_cap(&trial),
        Some(Quota::default().tpm(600_000))
    );
    assert_eq!(
        pool.deployment("west")
            .unwrap()
            .limiter()
            .tenant_cap(&trial),
        None
    );
    let _scope = fleet.registry.scope();
    let mocks = Mocks::of(&fleet);
    let start = Instant::now();
    ask(&mocks, "trial").await.unwrap();
    ask(&mocks, "trial").await.unwrap();
    let error = ask(&mocks, "trial").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    let ApiError::Limiter(Error::PoolRefused { pool, refusals }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(pool, "gpt-4o");
    let reasons: Vec<(String, String)> = refusals
        .iter()
        .map(|r| (r.deployment.clone(), r.reason.to_string()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    for (deployment, reason) in &reasons {
        assert!(
            reason.contains(&format!(
                "the azure/{deployment} tenant `trial` token budget"
            )),
            "{reason}"
        );
    }
    let text = error.to_string();
    assert!(text.contains("tenant `trial`"), "{text}");
    // The refusal's events name the tenant too.
    let told: Vec<String> = warnings
        .all()
        .into_iter()
        .filter(|w| w.contains("tenant=\"trial\"") || w.contains("tenant=trial"))
        .collect();
    assert!(!told.is_empty(), "{:?}", warnings.all());

    // Each family counted one of its calls.
    assert_eq!(tenant_counts(&fleet, "trial"), (2, 2_000));
    ask(&mocks, "paid").await.unwrap();
    assert_eq!(tenant_counts(&fleet, "paid"), (1, 1_000));
}

/// `Pool::acquire_for` with a concurrency cap of one call per deployment: a tenant holding a
/// call on each deployment waits (5 s and more) while another tenant is admitted at once, and
/// is admitted the moment one of its calls ends, on that call's deployment; each reservation
/// says its deployment and tenant.
#[tokio::test(start_paused = true)]
async fn a_tenant_at_its_concurrency_caps_waits_for_its_own_call_to_end() {
    let fleet = Fleet::new(&PAIR, None);
    let pool = fleet.registry.pool("gpt-4o").unwrap();
    let capped = Tenant::from("capped");
    for deployment in pool.deployments() {
        deployment
            .limiter()
            .set_tenant_cap(&capped, Some(Quota::default().concurrency(1)))
            .unwrap();
    }
    let cost = Cost::request(1_000, 0);
    let first = pool
        .acquire_for(cost, Priority::Normal, &capped)
        .await
        .unwrap();
    let second = pool
        .acquire_for(cost, Priority::Normal, &capped)
        .await
        .unwrap();
    assert_eq!(first.deployment().name(), "east");
    assert_eq!(second.deployment().name(), "west");
    assert_eq!(first.tenant(), Some(&capped));

    let third = {
        let (pool, capped) = (pool.clone(), capped.clone());
        tokio::spawn(async move {
            let asked = Instant::now();
            let reservation = pool.acquire_for(cost, Priority::Normal, &capped).await;
            (reservation.unwrap(), asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!third.is_finished());
    let asked = Instant::now();
    let other = Tenant::from("other");
    let theirs = pool
        .acquire_for(cost, Priority::Normal, &other)
        .await
        .unwrap();
    assert_eq!(asked.elapsed(), Duration::ZERO);
    assert_eq!(theirs.tenant(), Some(&other));

    let ended = Instant::now();
    second.settle(Usage::new(1_000, 0));
    let (reservation, waited) = third.await.unwrap();
    assert_eq!(ended.elapsed(), Duration::ZERO);
    assert_eq!(waited, Duration::from_secs(5));
    assert_eq!(reservation.deployment().name(), "west");
    assert_eq!(reservation.tenant(), Some(&capped));
    drop((first, theirs, reservation));
}
