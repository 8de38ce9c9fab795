//! The Redis path's cost: reserve latency (p50/p99) and reservations per second on one busy
//! family at 1, 8, 64 and 512 concurrent tasks, beside a plain Redis `INCR` round trip and the
//! local limiter in the same run. Starts its own `redis-server` on a unix socket.
//!
//! Run with `cargo bench -p ratelimited-runtime --features redis --bench redis`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratelimited_runtime::store::RedisConfig;
use ratelimited_runtime::{Cost, Limiter, Quota, Usage};

const PER_LEVEL: usize = 4_000;

struct Server(Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_redis() -> (Server, String) {
    let dir = std::env::temp_dir().join(format!("ratelimited-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the Redis bench needs `redis-server` (apt-get install -y redis-server)");
    for _ in 0..1_000 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (
        Server(child, dir),
        format!("redis+unix://{}", socket.display()),
    )
}

/// Runs `PER_LEVEL` operations over `tasks` tasks; returns (p50, p99, operations per second).
async fn measure<F, Fut>(tasks: usize, op: F) -> (Duration, Duration, f64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let per_task = PER_LEVEL.div_ceil(tasks);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    op().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (at(0.50), at(0.99), all.len() as f64 / elapsed.as_secs_f64())
}

fn never_binding() -> Quota {
    Quota::default().rpm(1_000_000_000).tpm(1_000_000_000_000)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (_server, url) = start_redis();
    let shared = RedisConfig::new(url.clone())
        .registry_with_env([
            ("RATE_LIMITED_BENCH_RPM", "1000000000"),
            ("RATE_LIMITED_BENCH_TPM", "1000000000000"),
        ])
        .limiter_with("bench", Some("openai"), None)
        .unwrap()
        .limiter;
    let local = Limiter::new(never_binding());
    let client = redis::Client::open(url.as_str()).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();

    println!("tasks | reserve+settle p50 / p99 / per s | INCR p50 / p99 / per s | local per s");
    for tasks in [1, 8, 64, 512] {
        let limiter = shared.clone();
        let (p50, p99, rate) = measure(tasks, move || {
            let limiter = limiter.clone();
            async move {
                let reservation = limiter.acquire(Cost::request(100, 20)).await.unwrap();
                reservation.settle(Usage::new(90, 10));
            }
        })
        .await;
        let conn = connection.clone();
        let (i50, i99, irate) = measure(tasks, move || {
            let mut conn = conn.clone();
            async move {
                let _: i64 = redis::cmd("INCR")
                    .arg("bench:incr")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        })
        .await;
        let limiter = local.clone();
        let (_, _, lrate) = measure(tasks, move || {
            let limiter = limiter.clone();
            async move {
                let reservation = limiter.acquire(Cost::request(100, 20)).await.unwrap();
                reservation.settle(Usage::new(90, 10));
            }
        })
        .await;
        println!(
            "{tasks:>5} | {p50:>8.2?} / {p99:>8.2?} / {rate:>7.0} | {i50:>8.2?} / {i99:>8.2?} / {irate:>7.0} | {lrate:>9.0}"
        );
        println!(
            "      | reserve+settle p50 = {:.2}x two INCR round trips",
            p50.as_secs_f64() / (2.0 * i50.as_secs_f64())
        );
    }
}
