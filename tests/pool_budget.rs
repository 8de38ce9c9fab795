//! A deployment pool's budget (`RATE_LIMITED_POOL_<NAME>_BUDGET_TOKENS` / `_BUDGET_USD`,
//! `PoolConfig::budget`): it counts what every deployment uses and refuses a call the pool can
//! no longer pay for, naming the pool, while each deployment alone has room; and the pool's
//! snapshot and events in the same runs.

use std::time::Duration;

use ratelimited::pool::{DeploymentConfig, PoolCall, PoolConfig};
use ratelimited::spend::Amount;
use ratelimited::spend::SpendLimit;
use ratelimited::testing::{MockLimits, MockProvider, MockRequest, MockResponse};
use ratelimited::{CallError, Error, Quota, Registry};

mod pool_support;
use pool_support::*;

#[path = "warnings_support/mod.rs"]
mod warnings_support;
use warnings_support::Warnings;

/// One call of `prompt + max_tokens` on the fleet's pool, sent to whichever deployment it is
/// routed to.
async fn call(fleet: &Fleet, prompt: u64, max_tokens: u64) -> Result<MockResponse, ApiError> {
    let mut call =
        PoolCall::in_registry(&fleet.registry, "gpt-4o", None).map_err(ApiError::from)?;
    call.set_input_tokens(prompt);
    call.set_max_tokens(max_tokens);
    call.run(|deployment| {
        let provider = fleet.provider(deployment.name()).clone();
        let request = MockRequest::new("gpt-4o", prompt).max_tokens(max_tokens);
        async move { provider.chat(&request).await.map_err(ApiError::Http) }
    })
    .await
}

fn left(fleet: &Fleet) -> u64 {
    let pool = fleet.registry.pool("gpt-4o").unwrap();
    pool.budget_left()
        .tokens
        .expect("the pool has a token budget")
}

#[tokio::test(start_paused = true)]
async fn the_pool_budget_refuses_exactly_past_its_edge_naming_the_pool() {
    let fleet = Fleet::with_env(
        &DEPLOYMENTS,
        None,
        &[("RATE_LIMITED_POOL_GPT_4O_BUDGET_TOKENS", "10_000")],
    );
    call(&fleet, 2_000, 500).await.unwrap();
    let edge = left(&fleet);
    assert!(edge < 8_000, "the first call spent its usage: {edge} left");
    // One token more than is left is refused, though every deployment has room of its own.
    let error = call(&fleet, edge + 1 - 500, 500).await.unwrap_err();
    match error {
        ApiError::Limiter(Error::BudgetExhausted {
            budget,
            remaining,
            requested,
        }) => {
            assert_eq!(budget, "the pool `gpt-4o` token budget");
            assert_eq!(remaining, Amount::Tokens(edge));
            assert_eq!(requested, Amount::Tokens(edge + 1));
        }
        other => panic!("expected the pool's budget error, got {other:?}"),
    }
    let stats = fleet.registry.stats();
    for (name, _) in DEPLOYMENTS {
        if let Some(family) = stats.family(name) {
            assert_eq!(
                family.budget_left.tokens, None,
                "{name} has no budget of its own"
            );
        }
    }
    // A reservation that fills what is left exactly is admitted.
    call(&fleet, edge - 500, 500).await.unwrap();
    let pool = fleet.registry.pool("gpt-4o").unwrap().stats();
    assert_eq!(pool.refused, 1);
    assert_eq!(pool.admitted, 2);
    assert!(
        left(&fleet) <= 500,
        "the second call used at least its prompt"
    );
}

#[tokio::test(start_paused = true)]
async fn the_pool_budget_binds_all_deployments_together_under_concurrency() {
    let budget = 300_000;
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let registry = fleet.registry.clone().with_pool(
        PoolConfig::new("gpt-4o")
            .deployment(pool_deployment("east", 100_000))
            .deployment(pool_deployment("west", 50_000))
            .deployment(pool_deployment("north", 20_000))
            .budget(SpendLimit::tokens(budget)),
    );
    let fleet = Fleet {
        registry,
        providers: fleet.providers,
    };
    let outcomes = fleet.run(&workload(600)).await;
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(&o.result, Err(ApiError::Limiter(Error::BudgetExhausted { budget, .. }))
                if budget == "the pool `gpt-4o` token budget")
        })
        .count();
    let done = outcomes.iter().filter(|o| o.result.is_ok()).count();
    assert_eq!(
        refused + done,
        600,
        "every call either ran or met the pool's budget"
    );
    let spent: u64 = fleet
        .providers
        .iter()
        .map(|(_, p)| p.stats().prompt_tokens + p.stats().completion_tokens)
        .sum();
    assert!(
        spent <= budget,
        "{spent} tokens used against a pool budget of {budget}"
    );
    assert!(refused > 0 && done > 0, "{done} done, {refused} refused");
    let stats = fleet.registry.pool("gpt-4o").unwrap().stats();
    for deployment in &stats.deployments {
        assert!(deployment.admitted > 0, "{} took no call", deployment.name);
    }
    assert_eq!(stats.budget_left.tokens, Some(budget - spent));
}

fn pool_deployment(name: &str, tpm: u64) -> DeploymentConfig {
    DeploymentConfig::new(name, "azure/gpt-4o").quota(Quota::default().rpm(RPM).tpm(tpm))
}

#[tokio::test(start_paused = true)]
async fn a_dollar_budget_needs_a_price_on_every_deployment_and_bad_values_name_the_variable() {
    let unpriced = Fleet::with_env(
        &DEPLOYMENTS,
        None,
        &[
            ("RATE_LIMITED_POOL_GPT_4O_BUDGET_USD", "2.5"),
            ("RATE_LIMITED_EAST_PRICE", "input=2.5,output=10"),
            ("RATE_LIMITED_NORTH_PRICE", "input=2.5,output=10"),
        ],
    );
    let text = unpriced.registry.pool("gpt-4o").unwrap_err().to_string();
    assert!(text.contains("RATE_LIMITED_WEST_PRICE"), "{text}");
    assert!(
        text.contains("deployment `west` of pool `gpt-4o`"),
        "{text}"
    );

    let malformed = Fleet::with_env(
        &DEPLOYMENTS,
        None,
        &[("RATE_LIMITED_POOL_GPT_4O_BUDGET_TOKENS", "lots")],
    );
    let text = malformed.registry.pool("gpt-4o").unwrap_err().to_string();
    assert!(
        text.contains("RATE_LIMITED_POOL_GPT_4O_BUDGET_TOKENS=\"lots\""),
        "{text}"
    );

    // $2.50 per million in and $10 out: each call of 1,000 in and 200 out reserves $0.0045.
    let priced = Fleet::with_env(
        &DEPLOYMENTS,
        None,
        &[
            ("RATE_LIMITED_POOL_GPT_4O_BUDGET_USD", "0.009"),
            ("RATE_LIMITED_EAST_PRICE", "input=2.5,output=10"),
            ("RATE_LIMITED_WEST_PRICE", "input=2.5,output=10"),
            ("RATE_LIMITED_NORTH_PRICE", "input=2.5,output=10"),
        ],
    );
    let pool = priced.registry.pool("gpt-4o").unwrap();
    assert_eq!(pool.budget_left().usd, Some(0.009));
    assert_eq!(pool.budget_left().tokens, None);
    call(&priced, 1_000, 200).await.unwrap();
    let spent = 0.009 - pool.budget_left().usd.unwrap();
    assert!(spent > 0.0 && spent <= 0.0045 + 1e-12, "{spent}");
}

#[tokio::test(start_paused = true)]
async fn pool_stats_and_events_name_the_pool_and_its_deployments() {
    let (warnings, _guard) = Warnings::catch();
    let east = MockProvider::new(MockLimits::new(RPM, 100_000));
    let west = MockProvider::new(MockLimits::new(RPM, 50_000));
    let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
        PoolConfig::new("gpt-4o")
            .deployment(pool_deployment("east", 100_000))
            .deployment(pool_deployment("west", 50_000))
            .budget(SpendLimit::tokens(1_000_000)),
    );
    // 90 calls of 5,000 tokens at once: 450,000 tokens on 150,000 per minute.
    let tasks: Vec<_> = (0..90)
        .map(|_| {
            let (registry, east, west) = (registry.clone(), east.clone(), west.clone());
            tokio::spawn(async move {
                let mut call = PoolCall::in_registry(&registry, "gpt-4o", None).unwrap();
                call.set_input_tokens(4_000);
                call.set_max_tokens(1_000);
                call.run(|deployment| {
                    let provider = if deployment.name() == "east" {
                        east.clone()
                    } else {
                        west.clone()
                    };
                    let request = MockRequest::new("gpt-4o", 4_000).max_tokens(1_000);
                    async move { provider.chat(&request).await.map_err(CallError::from) }
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let pool = registry.pool("gpt-4o").unwrap();
    let stats = pool.stats();
    assert_eq!(stats.pool, "gpt-4o");
    assert_eq!((stats.issued, stats.admitted, stats.refused), (90, 90, 0));
    assert_eq!((stats.waiting, stats.cancelled), (0, 0));
    assert_eq!(stats.tokens, 450_000);
    assert_eq!(stats.rate_limited(), 0);
    let (e, w) = (
        stats.deployment("east").unwrap(),
        stats.deployment("west").unwrap(),
    );
    assert_eq!(e.admitted + w.admitted, 90);
    assert_eq!(e.tokens + w.tokens, 450_000);
    // East has two thirds of the limits: within one call of two thirds of the calls.
    assert!(e.admitted.abs_diff(60) <= 1, "east took {}", e.admitted);
    assert!(
        (e.share - 2.0 / 3.0).abs() < 0.02,
        "east's share {}",
        e.share
    );
    assert_eq!(
        e.family.admitted, e.admitted,
        "its family counts the same admissions"
    );
    assert_eq!(e.breaker, ratelimited::stats::BreakerState::Closed);
    assert_eq!(e.skipped_for, None);
    // 300,000 tokens beyond the two full buckets refill at 150,000 a minute: the last call is
    // admitted 120 s in.
    assert_eq!(stats.max_wait, Duration::from_secs(120));
    assert_eq!(
        stats.total_wait,
        Duration::from_secs(3_720),
        "{:?}",
        stats.total_wait
    );
    let spent = east.stats().prompt_tokens
        + east.stats().completion_tokens
        + west.stats().prompt_tokens
        + west.stats().completion_tokens;
    assert_eq!(stats.budget_left.tokens, Some(1_000_000 - spent));

    // An out-of-quota deployment is skipped, and the event names the pool and the deployment.
    pool.skip_out_of_quota("west", "insufficient_quota");
    let west_stats = pool.stats();
    let west_now = west_stats.deployment("west").unwrap();
    assert_eq!(
        west_now.skipped_for,
        Some(ratelimited::pool::DEFAULT_QUOTA_COOLDOWN)
    );
    let events = warnings.all();
    let skipped = events
        .iter()
        .find(|e| e.contains("target=ratelimited::pool"))
        .unwrap_or_else(|| panic!("no pool event in {events:?}"));
    assert!(skipped.contains("pool=gpt-4o"), "{skipped}");
    assert!(skipped.contains("deployment=west"), "{skipped}");
    assert!(skipped.contains("message=insufficient_quota"), "{skipped}");
    assert_eq!(ratelimited::events::POOL, "ratelimited::pool");
}
