//! The planner for a deployment pool (`PoolPlanner`): its plan against a paused-time run of
//! the same workload through `PoolCall` against three `MockProvider`s (makespan and shares),
//! and which deployment binds.

use std::time::Duration;

use ratelimited::limiter::Dimension;
use ratelimited::planner::{Binding, PoolPlanner, PromptTokens, Workload};
use ratelimited::pool::{DeploymentConfig, PoolConfig};
use ratelimited::testing::{MockLimits, MockProvider};
use ratelimited::{Quota, Registry};

mod pool_support;
use pool_support::*;

const LATENCY: Duration = Duration::from_millis(800);

fn pool_config(deployments: &[(&str, u64)]) -> PoolConfig {
    deployments
        .iter()
        .fold(PoolConfig::new("gpt-4o"), |pool, &(name, tpm)| {
            pool.deployment(
                DeploymentConfig::new(name, "azure/gpt-4o")
                    .quota(Quota::default().rpm(RPM).tpm(tpm)),
            )
        })
}

/// The fleet of `deployments` with `LATENCY` on every provider.
fn fleet(deployments: &[(&str, u64)]) -> Fleet {
    let providers = deployments
        .iter()
        .map(|&(name, tpm)| {
            let provider = MockProvider::new(MockLimits::new(RPM, tpm)).latency(LATENCY);
            (name.to_owned(), provider)
        })
        .collect();
    Fleet {
        registry: Registry::with_env([("RATE_LIMITED_TIER", "tier-1")])
            .with_pool(pool_config(deployments)),
        providers,
    }
}

#[tokio::test(start_paused = true)]
async fn the_plan_matches_a_run_of_the_same_workload() {
    let workload = Workload::new(600)
        .prompt_tokens(PromptTokens::Uniform {
            min: 400,
            max: 1_200,
        })
        .max_tokens(300)
        .concurrency(600)
        .latency(LATENCY);
    let plan = PoolPlanner::new(pool_config(&DEPLOYMENTS))
        .plan(&workload)
        .unwrap();

    let fleet = fleet(&DEPLOYMENTS);
    let sizes: Vec<(u64, u64)> = workload.prompts().into_iter().map(|p| (p, 300)).collect();
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "a call failed");
    let makespan = outcomes.iter().map(|o| o.finished).max().unwrap();
    let ratio = plan.makespan.as_secs_f64() / makespan.as_secs_f64();
    println!(
        "plan {:.3} s, run {:.3} s ({ratio:.4}x), pooled minimum {:.3} s",
        plan.makespan.as_secs_f64(),
        makespan.as_secs_f64(),
        plan.pooled_minimum.as_secs_f64()
    );
    assert!(
        (ratio - 1.0).abs() < 0.03,
        "plan {:?} against run {makespan:?}",
        plan.makespan
    );
    assert_eq!(plan.tokens, charged(&sizes));
    let total = charged(&sizes) as f64;
    for ((name, provider), deployment) in fleet.providers.iter().zip(&plan.deployments) {
        assert_eq!(&deployment.name, name);
        let ran = provider.stats().admitted_tokens as f64 / total;
        assert!(
            (deployment.share - ran).abs() < 0.01,
            "{name}: planned share {:.4}, run {ran:.4}",
            deployment.share
        );
        assert_eq!(
            deployment.binding,
            Binding::Limit(Dimension::TokensPerMinute)
        );
    }
    let requests: u64 = plan.deployments.iter().map(|d| d.requests).sum();
    assert_eq!(requests, 600);
    assert!(plan.makespan >= plan.pooled_minimum);
    assert!(
        plan.ratio_to_minimum() < 1.02,
        "{}",
        plan.ratio_to_minimum()
    );
}

#[test]
fn the_deployment_that_alone_fits_the_large_requests_binds() {
    // 30,000-token requests fit east only: east sets the pace while west sits idle.
    let workload = Workload::new(40)
        .prompt_tokens(PromptTokens::Fixed(29_000))
        .max_tokens(1_000)
        .concurrency(40)
        .latency(Duration::from_secs(1));
    let plan = PoolPlanner::new(pool_config(&[("east", 100_000), ("west", 20_000)]))
        .plan(&workload)
        .unwrap();
    let east = plan.deployment("east").unwrap();
    assert_eq!(east.requests, 40);
    assert_eq!(east.share, 1.0);
    assert_eq!(plan.deployment("west").unwrap().requests, 0);
    assert_eq!(
        plan.binding_deployment().map(|d| d.name.as_str()),
        Some("east")
    );
    assert_eq!(east.binding, Binding::Limit(Dimension::TokensPerMinute));
    // 1,200,000 tokens, east's 100,000 at once and the rest at 100,000 a minute.
    assert_eq!(plan.makespan, Duration::from_secs(11 * 60 + 1));

    let too_large = Workload::new(1).prompt_tokens(PromptTokens::Fixed(200_000));
    let error = PoolPlanner::new(pool_config(&[("east", 100_000), ("west", 20_000)]))
        .plan(&too_large)
        .unwrap_err();
    assert!(
        matches!(error, ratelimited::Error::RequestTooLarge { .. }),
        "{error}"
    );
}
