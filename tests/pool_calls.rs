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
