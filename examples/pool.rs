//! A deployment pool against three mock servers, beside the round-robin peer users write
//! without a router, in the same run: makespan against the pooled minimum, 429s and lost
//! requests for both.
//!
//! ```sh
//! cargo run --release --example pool              # paused time, then real HTTP on 127.0.0.1
//! cargo run --release --example pool -- --paused  # paused time only (well under a second)
//! ```
//!
//! **Deployments.** Three of one model with different limits (`east`, `west`, `north`:
//! 100k, 50k and 20k TPM with 600, 300 and 120 RPM in paused time; scaled up in real time so
//! that the run takes about ten seconds), each its own `MockProvider` (paused time) or
//! `MockServer` (real HTTP on loopback, on a runtime thread of its own as a remote server
//! would be). Each server charges `prompt + max_tokens` on arrival from buckets that start
//! full, and answers 429 with `retry-after-ms` when they are empty.
//!
//! **Workload.** 600 chat requests, all submitted at t = 0 from as many tasks: prompts of 400
//! to 1,199 tokens (a fixed sequence), `max_tokens` 300.
//!
//! **Runs.**
//! - ratelimited: the pool `gpt-4o` ([`PoolCall`]), each attempt routed to the deployment
//!   that admits it soonest.
//! - round-robin: no limiter; each attempt goes to the next server in turn, and a 429 waits as
//!   the server asks (`retry-after-ms`, else `retry-after`) and tries the next one, until it
//!   succeeds or the run is cut off, as people write it without a router.
//!
//! **Minimum.** Whatever the routing, the three token buckets (and request buckets) together
//! let at most their capacities through at once and their summed limits per minute after:
//! the last admission comes no earlier than `60 s × (Σ charge − Σ TPM) / Σ TPM` (likewise for
//! requests), and the last response one latency after it. Each run's makespan is reported
//! against that bound; a run cut off at three times the minimum counts its unfinished
//! requests as lost.

#[path = "common/mod.rs"]
mod common;
#[path = "common/peer.rs"]
mod peer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ratelimited::pool::{DeploymentConfig, PoolCall, PoolConfig, PoolStats};
use ratelimited::testing::{MockLimits, MockProvider, MockRequest};
use ratelimited::tokens::{count_chat, encoding_for_model, ChatMessage};
use ratelimited::{Quota, Registry};
use serde_json::{json, Value};
use tokio::time::Instant;

use common::{ApiError, ChatClient};
use peer::{retry_after, ServerThread};

const MODEL: &str = "gpt-4o";
const MAX_TOKENS: u64 = 300;
/// Retries per request of the round-robin peer: enough that the run's cut-off, not the count,
/// is what gives up.
const PEER_RETRIES: u32 = 1_000;

/// One way of running the example.
#[derive(Clone, Copy)]
struct Mode {
    title: &'static str,
    paused: bool,
    requests: usize,
    /// Per deployment: name, requests and tokens per minute.
    deployments: [(&'static str, u64, u64); 3],
    latency: Duration,
}

const PAUSED: Mode = Mode {
    title: "paused time, in-process MockProviders",
    paused: true,
    requests: 600,
    deployments: [
        ("east", 600, 100_000),
        ("west", 300, 50_000),
        ("north", 120, 20_000),
    ],
    latency: Duration::from_millis(500),
};

const REAL: Mode = Mode {
    title: "real time, three MockServers over HTTP on 127.0.0.1",
    paused: false,
    requests: 600,
    // The same proportions, scaled so that the buckets' refill takes about ten seconds.
    deployments: [
        ("east", 6_000, 330_000),
        ("west", 3_000, 165_000),
        ("north", 1_200, 66_000),
    ],
    latency: Duration::from_millis(200),
};

/// One request: its prompt as the server counts it and, in real time, its message.
#[derive(Clone)]
struct Job {
    prompt_tokens: u64,
    text: String,
}

impl Job {
    fn charge(&self) -> u64 {
        self.prompt_tokens + MAX_TOKENS
    }

    fn mock_request(&self) -> MockRequest {
        MockRequest::new(MODEL, self.prompt_tokens).max_tokens(MAX_TOKENS)
    }

    fn body(&self) -> Value {
        json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": self.text}],
            "max_tokens": MAX_TOKENS,
        })
    }
}

/// Words of one token each (with their leading space) in o200k; three letters and a space
/// keep the character-based estimate OpenAI and Azure charge equal to the count.
const WORDS: [&str; 8] = ["the", "and", "for", "are", "but", "not", "you", "all"];

fn workload(requests: usize, text: bool) -> Vec<Job> {
    let encoding = encoding_for_model(MODEL);
    (0..requests)
        .map(|i| {
            let target = 400 + (i as u64 * 37) % 800;
            if !text {
                return Job {
                    prompt_tokens: target,
                    text: String::new(),
                };
            }
            // count_chat adds 7 for one user message.
            let text = (0..target - 7)
                .map(|w| WORDS[(w as usize * 5 + i) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ");
            let prompt_tokens = count_chat(encoding, &[ChatMessage::user(text.as_str())]);
            Job {
                prompt_tokens,
                text,
            }
        })
        .collect()
}

/// The pooled minimum described in the module docs.
fn minimum(mode: &Mode, jobs: &[Job]) -> Duration {
    let after = |total: u64, capacity: u64| {
        let nanos = u128::from(total.saturating_sub(capacity)) * 60_000_000_000;
        Duration::from_nanos(nanos.div_ceil(u128::from(capacity)) as u64)
    };
    let tpm: u64 = mode.deployments.iter().map(|d| d.2).sum();
    let rpm: u64 = mode.deployments.iter().map(|d| d.1).sum();
    let tokens = after(jobs.iter().map(Job::charge).sum(), tpm);
    let requests = after(jobs.len() as u64, rpm);
    tokens.max(requests) + mode.latency
}

/// Where a deployment's requests go.
#[derive(Clone)]
enum Target {
    Mock(MockProvider),
    Http(Arc<ChatClient>),
}

impl Target {
    /// One attempt; `Ok` carries nothing the peer needs.
    async fn send(&self, job: &Job) -> Result<(), ApiError> {
        match self {
            Target::Mock(provider) => provider
                .chat(&job.mock_request())
                .await
                .map(drop)
                .map_err(ApiError::Http),
            Target::Http(client) => client.chat(&job.body()).await.map(drop),
        }
    }
}

/// A run's numbers.
struct Row {
    who: &'static str,
    makespan: Duration,
    rate_limited: u64,
    lost: usize,
    /// Per deployment: tokens its server admitted.
    admitted: Vec<u64>,
    pool: Option<PoolStats>,
}

/// The servers of a mode: in-process providers, or HTTP servers on runtimes of their own.
struct Fleet {
    providers: Vec<MockProvider>,
    targets: Vec<Target>,
    // Real time: each server's runtime, dropped after its server.
    _servers: Vec<ServerThread>,
}

impl Fleet {
    fn start(mode: &Mode) -> Fleet {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut fleet = Fleet {
            providers: Vec::new(),
            targets: Vec::new(),
            _servers: Vec::new(),
        };
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1_000)
            .build()
            .expect("an HTTP client");
        for &(_, rpm, tpm) in &mode.deployments {
            let provider = MockProvider::new(MockLimits::new(rpm, tpm)).latency(mode.latency);
            fleet.providers.push(provider.clone());
            if mode.paused {
                fleet.targets.push(Target::Mock(provider));
                continue;
            }
            let server = ServerThread::start(provider);
            let client = ChatClient::new(http.clone(), &server.server.base_url(), None);
            fleet.targets.push(Target::Http(Arc::new(client)));
            fleet._servers.push(server);
        }
        fleet
    }

    fn rate_limited(&self) -> u64 {
        self.providers.iter().map(|p| p.stats().rate_limited).sum()
    }

    fn admitted(&self) -> Vec<u64> {
        self.providers
            .iter()
            .map(|p| p.stats().admitted_tokens)
            .collect()
    }
}

fn registry(mode: &Mode) -> Registry {
    let pool = mode
        .deployments
        .iter()
        .fold(PoolConfig::new(MODEL), |pool, &(name, rpm, tpm)| {
            pool.deployment(
                DeploymentConfig::new(name, "azure/gpt-4o")
                    .quota(Quota::default().rpm(rpm).tpm(tpm)),
            )
        });
    Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(pool)
}

/// One job on the pool: each attempt sent to the deployment it was routed to.
async fn via_pool(registry: &Registry, fleet: &[Target], names: &[&str], job: &Job) -> bool {
    let mut call = match PoolCall::in_registry(registry, MODEL, None) {
        Ok(call) => call,
        Err(_) => return false,
    };
    call.set_input_tokens(job.prompt_tokens);
    call.set_max_tokens(MAX_TOKENS);
    let target_of = |name: &str| {
        let index = names.iter().position(|n| *n == name).expect("a deployment");
        fleet[index].clone()
    };
    match &fleet[0] {
        Target::Mock(_) => call
            .run(|deployment| {
                let Target::Mock(provider) = target_of(deployment.name()) else {
                    unreachable!("one kind of target per run")
                };
                let request = job.mock_request();
                async move { provider.chat(&request).await.map_err(ApiError::Http) }
            })
            .await
            .is_ok(),
        Target::Http(_) => call
            .run(|deployment| {
                let Target::Http(client) = target_of(deployment.name()) else {
                    unreachable!("one kind of target per run")
                };
                let body = job.body();
                async move { client.chat(&body).await }
            })
            .await
            .is_ok(),
    }
}

/// One job round-robin: each attempt to the next server in turn, a 429 waited out as the
/// server asks before the next attempt.
async fn round_robin(fleet: &[Target], next: &AtomicUsize, job: &Job) -> bool {
    for _ in 0..=PEER_RETRIES {
        let target = &fleet[next.fetch_add(1, Ordering::Relaxed) % fleet.len()];
        match target.send(job).await {
            Ok(()) => return true,
            Err(ApiError::Http(e)) if e.status == 429 => {
                let wait = retry_after(&e).unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(wait).await;
            }
            Err(_) => return false,
        }
    }
    false
}

/// Runs every job at once, through the pool or round-robin, on a fresh runtime and fleet.
fn run(mode: &Mode, jobs: &Arc<Vec<Job>>, pooled: bool, timeout: Duration) -> Row {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if mode.paused {
        builder.start_paused(true);
    }
    let runtime = builder.build().expect("a tokio runtime");
    // The providers read tokio's clock when created: the paused one, inside the runtime.
    let fleet = {
        let _clock = runtime.enter();
        Fleet::start(mode)
    };
    let registry = registry(mode);
    let names: Arc<Vec<&'static str>> = Arc::new(mode.deployments.iter().map(|d| d.0).collect());
    let (makespan, lost) = runtime.block_on(async {
        let targets = Arc::new(fleet.targets.clone());
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..jobs.len())
            .map(|i| {
                let (jobs, targets, names) = (jobs.clone(), targets.clone(), names.clone());
                let (registry, next) = (registry.clone(), next.clone());
                tokio::spawn(async move {
                    let job = &jobs[i];
                    let done = if pooled {
                        via_pool(&registry, &targets, &names, job).await
                    } else {
                        round_robin(&targets, &next, job).await
                    };
                    done.then(|| start.elapsed())
                })
            })
            .collect();
        let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
        let collect = finished.clone();
        let all = tokio::time::timeout(timeout, async move {
            for task in tasks {
                let done = task.await.expect("a task of the run");
                collect.lock().expect("not poisoned").push(done);
            }
        })
        .await;
        let finished = finished.lock().expect("not poisoned").clone();
        // Cut off: whatever had not finished is lost, and the run took the whole timeout.
        let done: Vec<Duration> = finished.iter().flatten().copied().collect();
        let lost = jobs.len() - done.len();
        let makespan = if all.is_err() {
            timeout
        } else {
            done.iter().copied().max().unwrap_or_default()
        };
        (makespan, lost)
    });
    Row {
        who: if pooled {
            "ratelimited pool"
        } else {
            "round-robin + retry"
        },
        makespan,
        rate_limited: fleet.rate_limited(),
        lost,
        admitted: fleet.admitted(),
        pool: pooled.then(|| registry.pool(MODEL).expect("the pool").stats()),
    }
}

fn run_mode(mode: &Mode) -> (Duration, Vec<Row>) {
    let jobs = Arc::new(workload(mode.requests, !mode.paused));
    let minimum = minimum(mode, &jobs);
    let timeout = minimum * 3;
    let rows = [true, false]
        .into_iter()
        .map(|pooled| run(mode, &jobs, pooled, timeout))
        .collect();
    (minimum, rows)
}

fn print_mode(mode: &Mode, minimum: Duration, rows: &[Row]) {
    let limits: Vec<String> = mode
        .deployments
        .iter()
        .map(|(name, rpm, tpm)| format!("{name} {}k TPM / {rpm} RPM", tpm / 1_000))
        .collect();
    println!("{} ({}):", mode.title, limits.join(", "));
    println!(
        "{} requests at once, pooled minimum {:.3} s",
        mode.requests,
        minimum.as_secs_f64()
    );
    println!("| run | makespan | pooled minimum | ratio | 429s | lost |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.3} s | {:.3} s | {:.4}x | {} | {} |",
            row.who,
            row.makespan.as_secs_f64(),
            minimum.as_secs_f64(),
            row.makespan.as_secs_f64() / minimum.as_secs_f64(),
            row.rate_limited,
            row.lost
        );
    }
    for row in rows {
        let total: u64 = row.admitted.iter().sum();
        let shares: Vec<String> = mode
            .deployments
            .iter()
            .zip(&row.admitted)
            .map(|((name, _, _), tokens)| {
                format!(
                    "{name} {:.1} %",
                    100.0 * *tokens as f64 / total.max(1) as f64
                )
            })
            .collect();
        println!("{}: tokens by deployment {}", row.who, shares.join(", "));
        if let Some(pool) = &row.pool {
            println!(
                "  pool stats: {} admitted, mean wait {:.1} s, longest {:.1} s, {} 429s",
                pool.admitted,
                pool.mean_wait().as_secs_f64(),
                pool.max_wait.as_secs_f64(),
                pool.rate_limited()
            );
        }
    }
    let tpm: u64 = mode.deployments.iter().map(|d| d.2).sum();
    let limits: Vec<String> = mode
        .deployments
        .iter()
        .map(|(name, _, t)| format!("{name} {:.1} %", 100.0 * *t as f64 / tpm as f64))
        .collect();
    println!("limits by deployment: {}", limits.join(", "));
}

fn main() {
    let mut paused_only = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--paused" => paused_only = true,
            other => {
                eprintln!("pool: unknown argument `{other}`: the only flag is --paused (paused time only)");
                std::process::exit(2);
            }
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Build the tokenizer before any clock starts.
    encoding_for_model(MODEL).warm();
    let modes: &[Mode] = if paused_only {
        &[PAUSED]
    } else {
        &[PAUSED, REAL]
    };
    for mode in modes {
        let started = std::time::Instant::now();
        let (minimum, rows) = run_mode(mode);
        print_mode(mode, minimum, &rows);
        println!(
            "({} took {:.1} s of wall-clock time)",
            mode.title,
            started.elapsed().as_secs_f64()
        );
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_reaches_the_minimum_with_no_429s_where_round_robin_does_not() {
        let mode = Mode {
            requests: 200,
            ..PAUSED
        };
        let (minimum, rows) = run_mode(&mode);
        let (pool, peer) = (&rows[0], &rows[1]);
        assert_eq!(pool.rate_limited, 0, "the pool drew 429s");
        assert_eq!(pool.lost, 0);
        let ratio = pool.makespan.as_secs_f64() / minimum.as_secs_f64();
        assert!(pool.makespan >= minimum, "faster than the buckets allow");
        assert!(
            ratio <= 1.05,
            "pool {:?} against {minimum:?}",
            pool.makespan
        );
        let stats = pool.pool.as_ref().expect("the pool's stats");
        assert_eq!(stats.admitted, 200);
        assert_eq!(stats.rate_limited(), 0);
        assert!(
            peer.rate_limited > 0,
            "round-robin over unequal limits draws 429s"
        );
        let peer_ratio = peer.makespan.as_secs_f64() / minimum.as_secs_f64();
        assert!(
            peer_ratio > ratio,
            "round-robin {peer_ratio:.4}x, pool {ratio:.4}x"
        );
    }
}
