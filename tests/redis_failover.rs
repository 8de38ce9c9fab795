//! The Redis backend when things break: the server killed and restarted mid-run, a process
//! killed while holding concurrency slots. Real time, a few seconds each.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratelimited::redis::RedisConfig;
use ratelimited::{limiter::Cost, Limiter};

mod redis_support;
use redis_support::RedisServer;

fn limiter(config: RedisConfig, vars: &[(&str, &str)]) -> Limiter {
    config
        .registry_with_env(vars.iter().copied())
        .limiter_with("failover-model", Some("openai"), None)
        .unwrap()
        .limiter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_loses_and_duplicates_nothing() {
    let mut redis = RedisServer::start();
    let limiter = limiter(
        RedisConfig::new(redis.url()).timeout(Duration::from_millis(100)),
        &[("RATE_LIMITED_FAILOVER_MODEL_RPM", "6000")],
    );
    let admitted = Arc::new(AtomicU64::new(0));
    let mut saw_fallback = false;
    let mut tasks = Vec::new();
    for request in 0..300u64 {
        if request == 100 {
            redis.kill();
        }
        if request == 200 {
            redis.restart();
            // Past one probe interval, so the next call asks Redis again.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let reservation = limiter.acquire(Cost::request(1, 0)).await.unwrap();
        saw_fallback |= limiter.shared_store_down();
        let admitted = admitted.clone();
        tasks.push(tokio::spawn(async move {
            admitted.fetch_add(1, Ordering::SeqCst);
            reservation.keep();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 300);
    assert!(saw_fallback, "the fallback never engaged");
    assert!(
        !limiter.shared_store_down(),
        "the limiter did not go back to Redis"
    );
    // Back on shared state: the restarted (empty) server counts what came after it.
    redis_support::eventually("a charge on the restarted server", || {
        !redis
            .cli(&["GET", "ratelimited:{openai:failover-model:tier-1}:rpm"])
            .trim()
            .is_empty()
    })
    .await;
}

const WORKER: &str = "RATELIMITED_TEST_LEASE_HOLDER";

/// Run by the test below in a child process: takes both slots, says so, and hangs until
/// killed.
#[tokio::test]
async fn lease_holder_process() {
    let Ok(url) = std::env::var(WORKER) else {
        return;
    };
    let limiter = limiter(
        RedisConfig::new(url).lease(Duration::from_millis(600)),
        &[("RATE_LIMITED_FAILOVER_MODEL_CONCURRENCY", "2")],
    );
    let a = limiter.acquire(Cost::request(1, 0)).await.unwrap();
    let b = limiter.acquire(Cost::request(1, 0)).await.unwrap();
    println!("HOLDING");
    tokio::time::sleep(Duration::from_secs(30)).await;
    drop((a, b));
}

#[tokio::test]
async fn a_killed_process_frees_its_slots_when_its_leases_expire() {
    let redis = RedisServer::start();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lease_holder_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER, redis.url())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("HOLDING") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the lease holder exited early");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();

    let limiter = limiter(
        RedisConfig::new(redis.url()).lease(Duration::from_millis(600)),
        &[("RATE_LIMITED_FAILOVER_MODEL_CONCURRENCY", "2")],
    );
    let reservation = limiter.acquire(Cost::request(1, 0)).await.unwrap();
    let waited = killed.elapsed();
    // The slots were still taken right after the kill, and free within one lease time.
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    reservation.keep();
}
