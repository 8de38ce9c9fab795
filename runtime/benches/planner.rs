//! How fast the capacity planner answers: a 100,000-request plan, timed, next to the peer it
//! replaces (driving the same workload through the limiter and the in-process `MockProvider`
//! on a paused clock, as tests/planner.rs does to check the plan).
//!
//! Run with `cargo bench -p ratelimited-runtime --features planner --bench planner`; it prints
//! the wall time of each, the virtual makespan, and the ratio. Target: the plan under 1 s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratelimited_runtime::planner::{Plan, Planner, PromptTokens, Workload};
use ratelimited_runtime::testing::{MockLimits, MockProvider, MockRequest};
use ratelimited_runtime::{Cost, Limiter, Quota, ReportUsage, Usage};

const REQUESTS: u64 = 100_000;
const RPM: u64 = 10_000;
const TPM: u64 = 2_000_000;

fn workload() -> Workload {
    Workload::new(REQUESTS)
        .prompt_tokens(PromptTokens::LogNormal {
            mean: 1_200,
            sigma: 0.5,
        })
        .max_tokens(300)
        .concurrency(256)
        .latency(Duration::from_secs(3))
}

fn plan() -> Plan {
    Planner::new(Quota::default().rpm(RPM).tpm(TPM))
        .plan(&workload())
        .expect("the workload fits the quota")
}

/// The same workload through a limiter and the mock provider, on a paused runtime.
fn mock_run() -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let workload = workload();
        let start = tokio::time::Instant::now();
        let provider = MockProvider::new(MockLimits::new(RPM, TPM)).latency(workload.latency);
        let limiter = Limiter::new(Quota::default().rpm(RPM).tpm(TPM));
        let prompts: Arc<[u64]> = workload.prompts().into();
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..workload.concurrency)
            .map(|_| {
                let (provider, limiter, prompts, next) = (
                    provider.clone(),
                    limiter.clone(),
                    prompts.clone(),
                    next.clone(),
                );
                tokio::spawn(async move {
                    while let Some(prompt) = prompts.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let reservation = limiter.acquire(Cost::request(*prompt, 300)).await;
                        let request = MockRequest::new("gpt-4o", *prompt).max_tokens(300);
                        let usage = provider.chat(&request).await.unwrap().usage().unwrap();
                        reservation
                            .unwrap()
                            .settle(Usage::new(usage.input_tokens, 300));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        start.elapsed()
    })
}

/// The fastest of `runs` timings of `f`, and its last result.
fn best_of<T>(runs: u32, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let result = f();
        best = best.min(started.elapsed());
        last = Some(result);
    }
    (best, last.expect("at least one run"))
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; a quick smoke run is enough there.
    let runs = if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    };
    let (plan_time, plan) = best_of(runs, plan);
    let (mock_time, mock_makespan) = best_of(runs, mock_run);
    println!("planner: {REQUESTS} requests, RPM {RPM}, TPM {TPM}, 256 workers, 3 s latency");
    println!(
        "  plan:            {:>8.1} ms wall, makespan {:.1} virtual min, binds {}",
        plan_time.as_secs_f64() * 1e3,
        plan.makespan.as_secs_f64() / 60.0,
        plan.binding()
    );
    println!(
        "  mock-driven run: {:>8.1} ms wall, makespan {:.1} virtual min",
        mock_time.as_secs_f64() * 1e3,
        mock_makespan.as_secs_f64() / 60.0
    );
    println!(
        "  ratio mock/plan: {:.2}x; plan under 1 s: {}",
        mock_time.as_secs_f64() / plan_time.as_secs_f64(),
        plan_time < Duration::from_secs(1)
    );
}
