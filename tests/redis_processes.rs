//! Four OS processes share one limit through Redis against one mock provider: no 429, the
//! combined rate close to the limit, and every process served in a fair interleaving. The
//! test binary re-runs itself as the workers (`--exact worker_process`).

use std::time::Duration;

use ratelimited::limiter::Cost;
use ratelimited::redis::RedisConfig;
use ratelimited::testing::{MockLimits, MockServer};

mod redis_support;
use redis_support::{epoch_us, wait_for_go, RedisServer, Workers};

const WORKER: &str = "RATELIMITED_TEST_WORKER";
/// 6,000 requests per minute at headroom 0.9: 90 per second once the burst is spent.
const RPM: u64 = 6_000;
const RUN: Duration = Duration::from_secs(3);

fn registry(url: String) -> ratelimited::Registry {
    RedisConfig::new(url).registry_with_env([
        ("RATE_LIMITED_FOUR_WAY_RPM", RPM.to_string()),
        ("RATE_LIMITED_FOUR_WAY_TPM", "1000000000".to_owned()),
    ])
}

/// One worker process: 8 tasks send requests until the shared deadline, each printing
/// `ADMITTED <µs since epoch>` when its request went out, and `STATUS <code>` if not 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_process() {
    let Ok(spec) = std::env::var(WORKER) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (redis, mock, go) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
        std::path::PathBuf::from(parts.next().unwrap()),
    );
    let limiter = registry(redis)
        .limiter_with("four-way", Some("openai"), None)
        .unwrap()
        .limiter;
    // Plain HTTP on loopback; reqwest still wants a crypto provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Started processes wait for each other (a loaded machine starts them far apart): the
    // parent writes the shared deadline once every worker is ready.
    println!("READY");
    let deadline = wait_for_go(&go).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (limiter, client, mock) = (limiter.clone(), client.clone(), mock.clone());
        tasks.push(tokio::spawn(async move {
            let mut lines = Vec::new();
            loop {
                let mut reservation = limiter.acquire(Cost::request(5, 1)).await.unwrap();
                let at = epoch_us();
                if at >= deadline {
                    reservation.cancel();
                    break;
                }
                reservation.mark_sent();
                let response = client
                    .post(format!("{mock}/chat/completions"))
                    .json(&serde_json::json!({
                        "model": "four-way",
                        "messages": [{"role": "user", "content": "hi"}],
                        "max_tokens": 1
                    }))
                    .send()
                    .await
                    .unwrap();
                lines.push(format!("ADMITTED {at}"));
                if response.status() != 200 {
                    lines.push(format!("STATUS {}", response.status()));
                }
                reservation.keep();
            }
            lines
        }));
    }
    for task in tasks {
        for line in task.await.unwrap() {
            println!("{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_limit_without_a_429() {
    let redis = RedisServer::start();
    let server = MockServer::start(MockLimits::new(RPM, 1_000_000_000))
        .await
        .unwrap();
    // The mock counts prompt tokens with a tokenizer that takes seconds to build in a debug
    // build: build it now, not during the measured run.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let warm_up = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = warm_up
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&serde_json::json!({
            "model": "four-way",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let go = std::env::temp_dir().join(format!("ratelimited-go-{}", std::process::id()));
    let spec = format!("{} {} {}", redis.url(), server.base_url(), go.display());
    let workers = Workers::start("worker_process", WORKER, go, vec![spec; 4]);
    // Spend the burst first, so the run measures the steady rate.
    let limiter = registry(redis.url())
        .limiter_with("four-way", Some("openai"), None)
        .unwrap()
        .limiter;
    let burst = Cost {
        requests: 5_400,
        ..Cost::default()
    };
    limiter.acquire(burst).await.unwrap().keep();
    workers.go(epoch_us() + u64::try_from(RUN.as_micros()).unwrap());
    let mut outputs = Vec::new();
    for (worker, output) in workers.outputs().into_iter().enumerate() {
        outputs.push((worker, output.await.unwrap()));
    }

    let mut admitted: Vec<(u64, usize)> = Vec::new();
    for (worker, output) in &outputs {
        for line in output.lines() {
            assert!(!line.starts_with("STATUS"), "worker {worker}: {line}");
            if let Some(at) = line.strip_prefix("ADMITTED ") {
                admitted.push((at.parse().unwrap(), *worker));
            }
        }
    }
    assert!(
        server.provider().rejections().is_empty(),
        "the provider answered 429"
    );

    // Combined rate: at least 95% of the limit times the headroom, over the run.
    let rate = RPM as f64 * 0.9 / 60.0;
    let expected = rate * RUN.as_secs_f64();
    let total = admitted.len() as f64;
    assert!(
        total >= 0.95 * expected,
        "{total} admitted, {expected} allowed"
    );
    assert!(
        total <= expected + 2.0,
        "{total} admitted, {expected} allowed"
    );

    // Fair interleaving: once every process is running (they start a few ms apart, and the
    // first one gets what refilled meanwhile), each gets a fair share
    // (within 15-35% against 25%), and every run of 64 admissions (two rounds of the 32 callers, who queue at once)
    // holds each process.
    admitted.sort_unstable();
    let all_running = (0..4)
        .map(|w| {
            admitted
                .iter()
                .find(|(_, x)| *x == w)
                .expect("a worker sent nothing")
                .0
        })
        .max()
        .unwrap();
    let order: Vec<usize> = admitted
        .iter()
        .filter(|(at, _)| *at > all_running)
        .map(|(_, w)| *w)
        .collect();
    assert!(
        order.len() as f64 >= 0.8 * expected,
        "{} after all started",
        order.len()
    );
    for worker in 0..4 {
        let share = order.iter().filter(|w| **w == worker).count() as f64 / order.len() as f64;
        assert!((0.15..=0.35).contains(&share), "worker {worker}: {share}");
    }
    for window in order.windows(64) {
        for worker in 0..4 {
            assert!(
                window.contains(&worker),
                "worker {worker} starved: {window:?}"
            );
        }
    }
}
