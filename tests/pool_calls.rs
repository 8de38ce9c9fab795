//! Calls on a deployment pool (`PoolCall`) against three `MockProvider`s of 100k, 50k and 20k
//! TPM, in paused time: throughput at the pooled minimum with no 429s and shares proportional
//! to the limits; a deployment failing with 503s, out of quota, or in a 429 storm, and the
//! others carrying on.

use std::time::Duration;

mod pool_support;
use pool_support::*;

#[tokio::test(start_paused = true)]
async fn three_deployments_finish_at_the_pooled_minimum_with_shares_by_limit() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let sizes = workload(600);
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "a call failed");
    for (name, provider) in &fleet.providers {
        assert_eq!(provider.stats().rate_limited, 0, "{name} answered a 429");
        provider.assert_within_limits();
    }
    let total = charged(&sizes);
    let limits: Vec<(u64, Duration)> = DEPLOYMENTS
        .iter()
        .map(|&(_, tpm)| (tpm, Duration::ZERO))
        .collect();
    let minimum = pooled_minimum(total, &limits);
    let makespan = outcomes.iter().map(|o| o.finished).max().unwrap();
    let ratio = makespan.as_secs_f64() / minimum.as_secs_f64();
    let admitted = admitted_tokens(&fleet);
    let pooled: u64 = DEPLOYMENTS.iter().map(|(_, tpm)| tpm).sum();
    println!(
        "600 calls, {total} tokens on 100k/50k/20k TPM: makespan {:.3} s, pooled minimum {:.3} s \
         ({ratio:.4}x)",
        makespan.as_secs_f64(),
        minimum.as_secs_f64()
    );
    for ((name, tpm), tokens) in DEPLOYMENTS.iter().zip(&admitted) {
        println!(
            "  {name}: {tokens} tokens, {:.2} % of the run for {:.2} % of the limits",
            100.0 * *tokens as f64 / total as f64,
            100.0 * *tpm as f64 / pooled as f64
        );
    }
    assert_eq!(
        admitted.iter().sum::<u64>(),
        total,
        "every call admitted once"
    );
    assert!(
        makespan >= minimum,
        "faster than the buckets allow: {makespan:?}"
    );
    assert!(
        ratio <= 1.02,
        "makespan {makespan:?} against the pooled minimum {minimum:?}"
    );
    for ((name, tpm), tokens) in DEPLOYMENTS.iter().zip(&admitted) {
        let share = *tokens as f64 / total as f64;
        let expected = *tpm as f64 / pooled as f64;
        assert!(
            (share - expected).abs() < 0.01,
            "{name}: {share:.4} of the tokens for {expected:.4} of the limits"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_deployment_failing_with_503s_opens_its_breaker_and_the_traffic_moves() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let west = fleet.provider("west").clone();
    let failing_from = Duration::from_secs(60);
    tokio::spawn(async move {
        tokio::time::sleep(failing_from).await;
        west.inject(ratelimited::testing::Fault::status(503, u32::MAX));
    });
    let sizes = workload(600);
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "a call was lost");
    let total = charged(&sizes);
    let admitted = admitted_tokens(&fleet);
    assert_eq!(
        admitted.iter().sum::<u64>(),
        total,
        "every call admitted once"
    );
    let west = fleet.provider("west");
    let failures = west.stats().faults;
    // The breaker opens after 10 failures in a row; then only a probe every 30 s goes there.
    let makespan = outcomes.iter().map(|o| o.finished).max().unwrap();
    let probes = (makespan - failing_from).as_secs() / 30;
    println!(
        "503s on west from 60 s: {failures} failed requests there, makespan {:.3} s",
        makespan.as_secs_f64()
    );
    assert!(
        failures >= 10 && failures <= 10 + probes + 1,
        "{failures} requests failed on west"
    );
    let breaker = fleet.registry.stats();
    let west_family = breaker
        .families
        .iter()
        .find(|f| f.family == "west")
        .unwrap();
    assert_eq!(west_family.breaker.to_string(), "open");
    // What west admitted before it failed came off the others' load; they carried the rest.
    let rest = pooled_minimum(
        total - admitted[1],
        &[(100_000, Duration::ZERO), (20_000, Duration::ZERO)],
    );
    let ratio = makespan.as_secs_f64() / rest.as_secs_f64();
    println!(
        "  east and north carried {} tokens: minimum {:.3} s ({ratio:.4}x)",
        total - admitted[1],
        rest.as_secs_f64()
    );
    assert!(
        ratio <= 1.05,
        "makespan {makespan:?} against the remaining two's {rest:?}"
    );
    for (_, provider) in &fleet.providers {
        assert_eq!(provider.stats().rate_limited, 0);
        provider.assert_within_limits();
    }
}

#[tokio::test(start_paused = true)]
async fn an_out_of_quota_deployment_is_skipped_and_never_retried() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    fleet
        .provider("north")
        .inject(ratelimited::testing::Fault::InsufficientQuota);
    let sizes = workload(300);
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "a call failed");
    let mut sent_to_north = 0;
    for outcome in &outcomes {
        let north: Vec<_> = outcome
            .visits
            .iter()
            .filter(|(d, _)| d == "north")
            .collect();
        assert!(
            north.len() <= 1,
            "a call went back to north: {:?}",
            outcome.visits
        );
        // Only calls admitted before north's first answer went there.
        assert!(
            north.iter().all(|(_, at)| *at == Duration::ZERO),
            "{north:?}"
        );
        sent_to_north += north.len();
    }
    assert_eq!(fleet.provider("north").stats().faults, sent_to_north as u64);
    let total = charged(&sizes);
    let minimum = pooled_minimum(
        total,
        &[(100_000, Duration::ZERO), (50_000, Duration::ZERO)],
    );
    let makespan = outcomes.iter().map(|o| o.finished).max().unwrap();
    println!(
        "north out of quota: {sent_to_north} calls met it at 0 s, none after; makespan {:.3} s, \
         east + west minimum {:.3} s",
        makespan.as_secs_f64(),
        minimum.as_secs_f64()
    );
    assert!(makespan.as_secs_f64() <= 1.02 * minimum.as_secs_f64());
}

#[tokio::test(start_paused = true)]
async fn when_every_deployment_refuses_one_error_names_each() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    for (_, provider) in &fleet.providers {
        provider.inject(ratelimited::testing::Fault::InsufficientQuota);
    }
    let outcomes = fleet.run(&[(100, 50)]).await;
    let Err(ApiError::Limiter(error)) = &outcomes[0].result else {
        panic!("expected the pool's refusal, got {:?}", outcomes[0].result);
    };
    let ratelimited::Error::PoolRefused { pool, refusals } = error else {
        panic!("expected PoolRefused, got {error:?}");
    };
    assert_eq!(pool, "gpt-4o");
    let names: Vec<_> = refusals.iter().map(|r| r.deployment.as_str()).collect();
    assert_eq!(names, ["east", "west", "north"]);
    let text = error.to_string();
    println!("{text}");
    assert!(
        text.starts_with(
            "no deployment of pool `gpt-4o` can take this call: east: quota exhausted"
        ),
        "{text}"
    );
    assert!(text.contains("skipped for another 600.0 s"), "{text}");
    // Each was tried once, and none again.
    let visits: Vec<_> = outcomes[0].visits.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(visits, ["east", "west", "north"]);
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_on_one_deployment_does_not_hold_the_others_back() {
    let storm = Duration::from_secs(90);
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    fleet
        .provider("east")
        .inject(ratelimited::testing::Fault::RateLimitStorm { until: storm });
    let sizes = workload(600);
    let outcomes = fleet.run(&sizes).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "a call failed");
    let rejections = fleet.provider("east").rejections();
    assert!(!rejections.is_empty());
    let t0 = fleet.provider("east").created();
    assert!(
        rejections.iter().all(|r| r.at == t0),
        "a call went back to east during its storm"
    );
    assert_eq!(fleet.provider("west").stats().rate_limited, 0);
    assert_eq!(fleet.provider("north").stats().rate_limited, 0);
    let total = charged(&sizes);
    let minimum = pooled_minimum(
        total,
        &[
            (100_000, storm),
            (50_000, Duration::ZERO),
            (20_000, Duration::ZERO),
        ],
    );
    let makespan = outcomes.iter().map(|o| o.finished).max().unwrap();
    let ratio = makespan.as_secs_f64() / minimum.as_secs_f64();
    println!(
        "a 90 s storm on east: {} 429s, all at 0 s; makespan {:.3} s, minimum with east from 90 s \
         {:.3} s ({ratio:.4}x)",
        rejections.len(),
        makespan.as_secs_f64(),
        minimum.as_secs_f64()
    );
    assert!(ratio <= 1.02, "makespan {makespan:?} against {minimum:?}");
    for (_, provider) in &fleet.providers {
        provider.assert_within_limits();
    }
}
