//! The capacity planner against the mock provider: the same workload driven through the
//! limiter and the in-process `MockProvider` in paused time takes as long as the plan says, for
//! workloads bound by requests, by tokens and by the client's own concurrency.
//!
//! `cargo test --features planner --test planner -- --nocapture` prints the comparison table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ratelimited::planner::{lowest_tier_meeting, Binding, Planner, PromptTokens, Workload};
use ratelimited::testing::{MockLimits, MockProvider, MockRequest};
use ratelimited::{
    limiter::{Cost, Dimension},
    Error, Limiter, Quota, ReportUsage, Usage,
};
use tokio::time::Instant;

const MODEL: &str = "gpt-4o-mini";

/// One row of the comparison: a workload, the limits it runs against, and what should bind.
struct Case {
    name: &'static str,
    limits: MockLimits,
    refunds_output: bool,
    workload: Workload,
    binds: Binding,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "RPM-bound",
            limits: MockLimits::new(60, 1_000_000),
            refunds_output: false,
            workload: Workload::new(300)
                .prompt_tokens(PromptTokens::Fixed(100))
                .max_tokens(50)
                .concurrency(50)
                .latency(Duration::from_secs(1)),
            binds: Binding::Limit(Dimension::RequestsPerMinute),
        },
        Case {
            name: "TPM-bound",
            limits: MockLimits::new(1_000, 20_000),
            refunds_output: false,
            workload: Workload::new(200)
                .prompt_tokens(PromptTokens::LogNormal {
                    mean: 800,
                    sigma: 0.5,
                })
                .max_tokens(200)
                .concurrency(20)
                .latency(Duration::from_secs(2)),
            binds: Binding::Limit(Dimension::TokensPerMinute),
        },
        Case {
            name: "TPM-bound, refunds",
            limits: MockLimits::new(1_000, 20_000),
            refunds_output: true,
            workload: Workload::new(200)
                .prompt_tokens(PromptTokens::Uniform { min: 400, max: 900 })
                .max_tokens(400)
                .completion_share(0.25)
                .concurrency(20)
                .latency(Duration::from_secs(2)),
            binds: Binding::Limit(Dimension::TokensPerMinute),
        },
        Case {
            name: "concurrency-bound",
            limits: MockLimits::new(500, 200_000),
            refunds_output: false,
            workload: Workload::new(400)
                .prompt_tokens(PromptTokens::Uniform { min: 200, max: 600 })
                .max_tokens(100)
                .concurrency(4)
                .latency(Duration::from_secs(3)),
            binds: Binding::Workers,
        },
    ]
}

fn quota_of(limits: MockLimits) -> Quota {
    Quota::default().rpm(limits.rpm).tpm(limits.tpm)
}

/// Drives `case` through a limiter and the mock provider, as annotated calls would: each worker
/// acquires, calls the provider, settles to the reported usage (keeping the output reservation
/// where the provider keeps it). Returns the makespan; any 429 fails the test.
async fn mock_makespan(case: &Case) -> Duration {
    let start = Instant::now();
    let provider = MockProvider::new(case.limits)
        .latency(case.workload.latency)
        .completion_fraction(case.workload.completion_share)
        .refund_unused(case.refunds_output);
    let limiter = Limiter::new(quota_of(case.limits));
    let prompts: Arc<[u64]> = case.workload.prompts().into();
    let next = Arc::new(AtomicUsize::new(0));
    let (max_tokens, n, refunds) = (
        case.workload.max_tokens,
        case.workload.n,
        case.refunds_output,
    );
    let workers: Vec<_> = (0..case.workload.concurrency)
        .map(|_| {
            let (provider, limiter, prompts, next) = (
                provider.clone(),
                limiter.clone(),
                prompts.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                while let Some(prompt) = prompts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let reserved_output = max_tokens * u64::from(n);
                    let reservation = limiter
                        .acquire(Cost::request(*prompt, reserved_output))
                        .await
                        .unwrap();
                    let request = MockRequest::new(MODEL, *prompt).max_tokens(max_tokens).n(n);
                    let response = provider
                        .chat(&request)
                        .await
                        .unwrap_or_else(|e| panic!("the mock refused a request: {e:?}"));
                    let usage = response.usage().expect("the mock reports usage");
                    reservation.settle(if refunds {
                        usage
                    } else {
                        Usage::new(usage.input_tokens, usage.output_tokens.max(reserved_output))
                    });
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    provider.assert_within_limits();
    assert_eq!(provider.stats().rate_limited, 0);
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn the_plan_matches_the_mock_provider_within_one_percent() {
    let mut table = vec![format!(
        "{:<20} {:>10} {:>10} {:>9} {:>9} {:>10} {:>9}",
        "workload", "planner s", "mock s", "diff %", "RPM", "TPM", "binds"
    )];
    for case in cases() {
        let plan = Planner::new(quota_of(case.limits))
            .refunds_output(case.refunds_output)
            .plan(&case.workload)
            .unwrap();
        let measured = mock_makespan(&case).await;
        let (planned, mocked) = (plan.makespan.as_secs_f64(), measured.as_secs_f64());
        let diff = (planned - mocked).abs() / mocked * 100.0;
        table.push(format!(
            "{:<20} {:>10.3} {:>10.3} {:>9.4} {:>9.1} {:>10.0} {:>9}",
            case.name,
            planned,
            mocked,
            diff,
            plan.achieved_rpm(),
            plan.achieved_tpm(),
            plan.binding().to_string()
        ));
        assert!(
            diff < 1.0,
            "{}: planned {planned} s, mock {mocked} s",
            case.name
        );
        assert_eq!(plan.binding(), case.binds, "{}", case.name);
        assert_eq!(plan.requests, case.workload.requests);
    }
    println!("{}", table.join("\n"));
}

#[test]
fn an_rpm_bound_burst_takes_exactly_its_refill() {
    // 60 go at once, then one per second: the 120th is admitted at 60 s and answers at once.
    let workload = Workload::new(120)
        .prompt_tokens(PromptTokens::Fixed(10))
        .max_tokens(0)
        .concurrency(500)
        .latency(Duration::ZERO);
    let plan = Planner::new(Quota::default().rpm(60))
        .plan(&workload)
        .unwrap();
    assert_eq!(plan.makespan, Duration::from_secs(60));
    assert_eq!(plan.achieved_rpm(), 120.0);
    assert_eq!(plan.binding(), Binding::Limit(Dimension::RequestsPerMinute));
    assert_eq!(plan.minutes.len(), 1);
    assert_eq!(plan.minutes[0].admitted_requests, 120);
    assert_eq!(plan.minutes[0].admitted_tokens, 1_200);
    assert_eq!(plan.minutes[0].admitted_input_tokens, 1_200);
    assert_eq!(plan.tokens_per_minute_limit(), None);
    // Request k (k >= 60) waits at the head from (k - 60) s to (k - 59) s: the whole minute.
    assert_eq!(plan.minutes[0].limited, Duration::from_secs(60));
}

#[test]
fn the_binding_changes_over_time() {
    // 20 workers with 1 s latency could send 1,200 a minute; RPM lets 100 through. The first
    // minute is the burst of 100 plus a minute of refill, after which RPM binds throughout.
    let workload = Workload::new(400)
        .prompt_tokens(PromptTokens::Fixed(10))
        .max_tokens(0)
        .concurrency(20)
        .latency(Duration::from_secs(1));
    let plan = Planner::new(Quota::default().rpm(100))
        .plan(&workload)
        .unwrap();
    // 100 at once (in 5 rounds of 20), then 300 more at 100 a minute: the last at 180 s.
    assert_eq!(plan.makespan, Duration::from_secs(181));
    let per_minute: Vec<u64> = plan.minutes.iter().map(|m| m.admitted_requests).collect();
    assert_eq!(per_minute.iter().sum::<u64>(), 400);
    assert_eq!(per_minute.len(), 4);
    assert!(plan
        .minutes
        .iter()
        .take(3)
        .all(|m| m.binding == Binding::Limit(Dimension::RequestsPerMinute)));
    // The last second: the last request, admitted at 180 s, in flight, and nobody waiting.
    assert_eq!(plan.minutes[3].binding, Binding::Workers);
    assert_eq!(plan.minutes[3].admitted_requests, 1);
    assert_eq!(plan.minutes[3].limited, Duration::ZERO);
}

#[test]
fn a_full_in_flight_cap_binds_as_concurrency() {
    let workload = Workload::new(100)
        .prompt_tokens(PromptTokens::Fixed(10))
        .concurrency(50)
        .latency(Duration::from_secs(10));
    let plan = Planner::new(Quota::default().concurrency(5))
        .plan(&workload)
        .unwrap();
    // 5 at a time, 10 s each: 20 rounds.
    assert_eq!(plan.makespan, Duration::from_secs(200));
    assert_eq!(plan.binding(), Binding::Limit(Dimension::Concurrency));
}

#[test]
fn refunds_shorten_a_token_bound_plan() {
    let workload = Workload::new(300)
        .prompt_tokens(PromptTokens::Fixed(200))
        .max_tokens(800)
        .completion_share(0.1)
        .concurrency(30);
    let quota = Quota::default().rpm(10_000).tpm(50_000);
    let kept = Planner::new(quota.clone()).plan(&workload).unwrap();
    let refunded = Planner::new(quota)
        .refunds_output(true)
        .plan(&workload)
        .unwrap();
    assert!(
        refunded.makespan < kept.makespan / 2,
        "{refunded:?} vs {kept:?}"
    );
    assert_eq!(kept.charged_tokens, 300 * 1_000);
    assert_eq!(refunded.charged_tokens, 300 * 280);
}

#[test]
fn the_lowest_tier_meeting_a_deadline() {
    // 10,000 × 1,500 tokens: gpt-4o's tier-1 (30k TPM × 0.9) needs over 9 hours, tier-2 (450k)
    // about 37 minutes.
    let workload = Workload::new(10_000)
        .prompt_tokens(PromptTokens::Fixed(1_200))
        .max_tokens(300)
        .concurrency(64)
        .latency(Duration::from_secs(2));
    let tiers = ["tier-1", "tier-2", "tier-3"];
    let hour = Duration::from_secs(3_600);
    let (tier, plan) = lowest_tier_meeting("gpt-4o", &tiers, &workload, hour)
        .unwrap()
        .expect("tier-2 is fast enough");
    assert_eq!(tier, "tier-2");
    assert!(plan.makespan <= hour && plan.makespan > Duration::from_secs(30 * 60));
    assert_eq!(plan.binding(), Binding::Limit(Dimension::TokensPerMinute));
    assert_eq!(
        plan.tokens_per_minute_limit(),
        Some((Dimension::TokensPerMinute, 405_000)),
        "450k TPM × headroom 0.9"
    );
    let minute = Duration::from_secs(60);
    assert_eq!(
        lowest_tier_meeting("gpt-4o", &tiers, &workload, minute).unwrap(),
        None
    );
    let err = lowest_tier_meeting("gpt-4o", &["tier-9"], &workload, hour).unwrap_err();
    assert!(err.to_string().contains("tier-9"), "{err}");
}

#[test]
fn bad_input_is_named() {
    let quota = Quota::default().tpm(1_000);
    let too_large = Workload::new(1)
        .prompt_tokens(PromptTokens::Fixed(900))
        .max_tokens(200);
    assert_eq!(
        Planner::new(quota.clone()).plan(&too_large).unwrap_err(),
        Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 1_100,
            capacity: 1_000,
        }
    );
    let err = Planner::new(quota)
        .plan(&Workload::new(10).n(0))
        .unwrap_err();
    assert!(err.to_string().contains("Workload::n"), "{err}");
}

#[tokio::test]
async fn plans_can_be_made_inside_a_tokio_runtime() {
    let plan = Planner::new(Quota::default().rpm(60))
        .plan(&Workload::new(61).latency(Duration::ZERO))
        .unwrap();
    assert_eq!(plan.makespan, Duration::from_secs(1));
}
