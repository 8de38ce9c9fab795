//! Throughput benchmark: one workload through three client strategies against the mock
//! provider's OpenAI-style buckets, in paused time and in real time.
//!
//! ```sh
//! cargo run --release --example throughput
//! ```
//!
//! **Workload.** Chat requests with prompts log-normal around 600 tokens (median 600, σ = 0.5,
//! from a seeded generator, so every run and every strategy sees the same requests),
//! `max_tokens` 256, completions 20-100 % of that. All requests are submitted at t = 0, as a
//! batch job does.
//!
//! **Strategies.**
//! - (a) `#[rate_limited]` at headroom 1.0, told the server's RPM and TPM.
//! - (b) no limiter: on a 429 wait `retry-after-ms` (else `retry-after`, else exponential backoff
//!   0.5 s × 2^k with jitter, at most 8 s) and try again, at most 10 times, as most SDKs do.
//! - (c) governor: an RPM limiter and a TPM limiter (burst = the limit), awaited one after the
//!   other (`until_ready`, then `until_n_ready(prompt + max_tokens)`); no reconciliation, no FIFO.
//!   A 429 that still comes back is retried as in (b).
//!
//! **Modes.**
//! - Paused time against the in-process `MockProvider`: 2,000 requests at 500 RPM / 200,000 TPM
//!   (gpt-4o-mini at tier-1); eight virtual minutes per strategy in about a second, every number
//!   exact. Governor's `until_n_ready` cannot run there (it sleeps on real time), so (c) runs
//!   the same loop on a tokio-clock `Clock`.
//! - Real time against `MockServer` (real HTTP on loopback, on its own runtime thread as a
//!   remote server would be) with 300 requests and scaled limits: about 12 s per strategy.
//!
//! **Minimum.** The mock charges `prompt + max_tokens` at admission and never refunds, from two
//! token buckets that start full (capacity = the per-minute limit, refilled at limit / 60 s).
//! Whatever the order, the last admission cannot come before both buckets have let the whole
//! charge through: `max((Σ charge − TPM) / (TPM/60 s), (requests − RPM) / (RPM/60 s), 0)`; the
//! last response comes the mock's latency after that. Each strategy's makespan (t = 0 to its
//! last request done or given up) is reported against that bound.
//!
//! **Reading the real-time numbers.** A server's bucket starts its clock at the first request
//! that *arrives*; a client limiter at the first one it *reserves*. When all requests start at
//! once, the first arrivals trail their reservations by the client's work on the burst
//! (estimating and sending hundreds of requests: tens of ms), while later, lone requests arrive
//! within a millisecond. At headroom 1.0 the client is therefore ahead of the server by that lag
//! and the first request after the burst gets a 429 whose retry-after is about the lag (the
//! `first admission` / `first 429` line shows both). ratelimited holds the family for it and is
//! in step from then on; governor stays ahead and gets a short 429 on most later requests. A
//! headroom a fraction of a percent below 1 absorbs the lag.

mod common;

use std::cell::{Cell, RefCell};
use std::num::NonZeroU32;
use std::ops::Add;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ApiError, ChatClient};
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, InsufficientCapacity, Quota, RateLimiter};
use ratelimited::http::HttpError;
use ratelimited::testing::{
    fresh_registry_with_env, LimitViolation, MockLimits, MockProvider, MockRequest, MockResponse,
    MockServer, RejectionKind,
};
use ratelimited::tokens::{count_chat, encoding_for_model, ChatMessage};
use ratelimited::{rate_limited, EstimateTokens, WithHeaders};
use serde_json::{json, Value};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::Instant;

/// A model id with no built-in table: the limits come only from the `RATE_LIMITED_BENCH_MODEL_*`
/// variables each run sets (its family id `bench-model` upper-cased, `-` as `_`).
const MODEL: &str = "bench-model";
const MAX_TOKENS: u64 = 256;
const SEED: u64 = 0x5EED_2026;
/// The retry budget of the two peers.
const MAX_RETRIES: u32 = 10;

/// One way of running the benchmark.
struct Mode {
    title: &'static str,
    paused: bool,
    requests: usize,
    limits: MockLimits,
    latency: Duration,
}

const PAUSED: Mode = Mode {
    title: "paused time, in-process MockProvider",
    paused: true,
    requests: 2_000,
    // gpt-4o-mini at tier-1. Both limits divide 60 s into whole nanoseconds, so governor's
    // truncated emission interval is exact and the comparison is not about rounding.
    limits: MockLimits::new(500, 200_000),
    latency: Duration::from_secs(1),
};

const REAL: Mode = Mode {
    title: "real time, MockServer over HTTP on 127.0.0.1",
    paused: false,
    requests: 300,
    // Scaled so the first minute's burst covers most of the work and the refill the rest
    // (about 11 s); like the paused limits, tokens bind and requests do not, and both
    // emission intervals are whole nanoseconds (200 ms and 250 µs).
    limits: MockLimits::new(300, 240_000),
    latency: Duration::from_millis(200),
};

// ---------------------------------------------------------------------------------------------
// The workload

/// One request of the workload.
struct Job {
    /// Prompt tokens, exactly as the server counts them.
    prompt_tokens: u64,
    /// What the mock completes for it.
    completion_tokens: u64,
    /// The user message (real-time mode only; paused mode sends token counts).
    text: String,
}

impl Job {
    /// What the server charges at admission.
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

/// xorshift64*: enough randomness for a workload, and no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, by Box-Muller (`1 − u` keeps the logarithm finite).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Words that are one token each (with their leading space) in o200k, the encoding the server
/// and the limiter both use for `bench-model`; the count is measured anyway.
const WORDS: [&str; 8] = [
    "rate", "limit", "token", "bucket", "model", "request", "queue", "window",
];

/// The first `n` requests of the workload; with `text`, each gets a user message of about its
/// size, and its prompt is what [`count_chat`] measures (the server's count).
fn workload(n: usize, text: bool) -> Vec<Job> {
    let mut rng = Rng::new(SEED);
    let encoding = encoding_for_model(MODEL);
    (0..n)
        .map(|i| {
            let target = (600.0 * (0.5 * rng.normal()).exp()).clamp(32.0, 4_000.0) as u64;
            let fraction = 0.2 + 0.8 * rng.uniform();
            let completion_tokens = ((MAX_TOKENS as f64 * fraction).ceil() as u64).min(MAX_TOKENS);
            if !text {
                return Job {
                    prompt_tokens: target,
                    completion_tokens,
                    text: String::new(),
                };
            }
            // count_chat adds 7 for one user message: 3 framing, "user", 3 reply priming.
            let words = target.saturating_sub(7).max(1) as usize;
            let text = (0..words)
                .map(|w| WORDS[(w * 5 + i) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ");
            let prompt_tokens = count_chat(encoding, &[ChatMessage::user(text.as_str())]);
            let job = Job {
                prompt_tokens,
                completion_tokens,
                text,
            };
            // The limiter must estimate what the server charges, or this benchmark would
            // measure estimation error instead of scheduling.
            assert_eq!(job.body().estimate_tokens(encoding), prompt_tokens);
            job
        })
        .collect()
}

/// The lower bound on the makespan described in the module docs.
fn minimum(limits: MockLimits, jobs: &[Job], latency: Duration) -> (Duration, Duration, Duration) {
    // Time for a bucket of `capacity` (refilled `capacity` per minute) to let `total` through.
    let drain = |total: u64, capacity: u64| {
        let nanos = u128::from(total.saturating_sub(capacity)) * 60_000_000_000;
        Duration::from_nanos(nanos.div_ceil(u128::from(capacity)) as u64)
    };
    let tokens = drain(jobs.iter().map(Job::charge).sum(), limits.tpm);
    let requests = drain(jobs.len() as u64, limits.rpm);
    (tokens.max(requests) + latency, tokens, requests)
}

// ---------------------------------------------------------------------------------------------
// Transport: the in-process provider or HTTP

enum Target {
    Mock(MockProvider),
    Http(ChatClient),
}

impl Target {
    /// One attempt, no limiter.
    async fn send(&self, job: &Job) -> Result<(), ApiError> {
        match self {
            Target::Mock(provider) => provider
                .chat(&job.mock_request())
                .await
                .map(drop)
                .map_err(ApiError::Http),
            Target::Http(http) => http.chat(&job.body()).await.map(drop),
        }
    }
}

tokio::task_local! {
    /// The completion of the request this task sends: the in-process mock runs inside the
    /// caller's task, so its `completion_with` reads it there.
    static COMPLETION: u64;
}

// ---------------------------------------------------------------------------------------------
// (a) ratelimited

/// The request's estimate and output budget come from `MockRequest` (prompt tokens,
/// `max_tokens`, `n`); the response's usage settles the reservation.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_mock(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<MockResponse, ApiError> {
    provider.chat(request).await.map_err(ApiError::Http)
}

/// The prompt is estimated from the JSON body (messages plus chat framing), `max_tokens` read
/// from it, and the `usage` in the response settles it.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_http(http: &ChatClient, body: &Value) -> Result<WithHeaders<Value>, ApiError> {
    http.chat(body).await
}

async fn via_ratelimited(target: &Target, job: &Job) -> Result<(), String> {
    let result = match target {
        Target::Mock(provider) => ask_mock(provider, &job.mock_request()).await.map(drop),
        Target::Http(http) => ask_http(http, &job.body()).await.map(drop),
    };
    result.map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// (b) retry on 429

/// The server's wait: `retry-after-ms`, else `retry-after` in seconds.
fn retry_after(error: &HttpError) -> Option<Duration> {
    let header = |name: &str| {
        error
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    header("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1_000.0))
        .or_else(|| header("retry-after").map(Duration::from_secs_f64))
}

/// Sends until a success, retrying 429s as the server asks; an error when the request is lost
/// (retries spent, or an error that is not a 429).
async fn send_with_retries(target: &Target, job: &Job, rng: &mut Rng) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        let error = match target.send(job).await {
            Ok(()) => return Ok(()),
            Err(ApiError::Http(e)) if e.status == 429 => e,
            Err(other) => return Err(other.to_string()),
        };
        if attempt == MAX_RETRIES {
            return Err(format!(
                "{MAX_RETRIES} retries spent; last: {}",
                ApiError::Http(error)
            ));
        }
        let wait = retry_after(&error).unwrap_or_else(|| {
            let base = (0.5 * f64::from(1u32 << attempt.min(4))).min(8.0);
            Duration::from_secs_f64(base * (0.5 + 0.5 * rng.uniform()))
        });
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// (c) governor

/// `tokio::time::Instant` as a governor clock reading, so governor runs on the paused clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(Duration::from(duration))
            .map_or(*self, TokioInstant)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type TokioLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

/// The peer's two limiters.
enum Governor {
    /// Paused time: governor's `until_n_ready` sleeps on futures-timer and reads quanta, both
    /// real time, so it would never see the virtual clock move. Same algorithm on tokio's clock.
    Tokio {
        rpm: TokioLimiter,
        tpm: TokioLimiter,
    },
    /// Real time: governor as shipped, default clock and `until_n_ready`.
    Real {
        rpm: DefaultDirectRateLimiter,
        tpm: DefaultDirectRateLimiter,
    },
}

impl Governor {
    fn new(limits: MockLimits, paused: bool) -> Self {
        let per_minute = |limit: u64| {
            Quota::per_minute(NonZeroU32::new(limit as u32).expect("limits are at least 1"))
        };
        let (rpm, tpm) = (per_minute(limits.rpm), per_minute(limits.tpm));
        if paused {
            Governor::Tokio {
                rpm: RateLimiter::direct_with_clock(rpm, TokioClock),
                tpm: RateLimiter::direct_with_clock(tpm, TokioClock),
            }
        } else {
            Governor::Real {
                rpm: RateLimiter::direct(rpm),
                tpm: RateLimiter::direct(tpm),
            }
        }
    }

    /// One request, then its tokens, as a caller with two governors writes it.
    async fn admit(&self, tokens: u64) -> Result<(), InsufficientCapacity> {
        let n = NonZeroU32::new(tokens as u32).unwrap_or(NonZeroU32::MIN);
        match self {
            Governor::Tokio { rpm, tpm } => {
                until_n_ready_on_tokio(rpm, NonZeroU32::MIN).await?;
                until_n_ready_on_tokio(tpm, n).await
            }
            Governor::Real { rpm, tpm } => {
                rpm.until_ready().await;
                tpm.until_n_ready(n).await
            }
        }
    }
}

/// `RateLimiter::until_n_ready` (check, sleep until the reported time, check again), with
/// tokio's sleep instead of futures-timer's.
async fn until_n_ready_on_tokio(
    limiter: &TokioLimiter,
    n: NonZeroU32,
) -> Result<(), InsufficientCapacity> {
    while let Err(not_until) = limiter.check_n(n)? {
        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running one strategy

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Ratelimited,
    Retry,
    Governor,
}

impl Strategy {
    const ALL: [Strategy; 3] = [Strategy::Ratelimited, Strategy::Retry, Strategy::Governor];

    fn tag(self) -> &'static str {
        &self.label()[..3]
    }

    fn label(self) -> &'static str {
        match self {
            Strategy::Ratelimited => "(a) ratelimited, headroom 1.0",
            Strategy::Retry => "(b) retry on 429 (Retry-After)",
            Strategy::Governor => "(c) governor RPM + TPM",
        }
    }
}

/// One strategy's figures.
struct Row {
    strategy: Strategy,
    makespan: Duration,
    minimum: Duration,
    rate_limited: u64,
    requests: usize,
    completed: usize,
    /// Given up by the client (retries spent, or an error).
    failed: usize,
    /// Still running at the timeout.
    unfinished: usize,
    /// `failed + unfinished`.
    lost: usize,
    check: Result<(), LimitViolation>,
    /// When the server admitted its first request (its buckets' clocks start there).
    first_admission: Option<Duration>,
    first_rejection: Option<Rejected>,
    /// Why the first lost request was given up.
    first_loss: Option<String>,
}

/// The server's first 429, from t = 0.
struct Rejected {
    at: Duration,
    kind: RejectionKind,
    retry_after: Option<Duration>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.makespan.as_secs_f64() / self.minimum.as_secs_f64()
    }
}

/// Runs `strategy` over `jobs` on a fresh runtime, provider (or server) and registry.
fn run(mode: &Mode, jobs: &Rc<Vec<Job>>, strategy: Strategy, timeout: Duration) -> Row {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if mode.paused {
        builder.enable_time().start_paused(true);
    } else {
        builder.enable_all();
    }
    let runtime = builder.build().expect("a tokio runtime");
    // Current-thread runtime: every task runs on this thread, so they all see this registry.
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_BENCH_MODEL_RPM", mode.limits.rpm.to_string()),
        ("RATE_LIMITED_BENCH_MODEL_TPM", mode.limits.tpm.to_string()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
    ]);
    // The provider reads tokio's clock when it is created: the paused one, inside the runtime.
    let provider = {
        let _clock = runtime.enter();
        MockProvider::new(mode.limits).latency(mode.latency)
    };
    let provider = if mode.paused {
        provider.completion_with(|max| COMPLETION.try_with(|c| *c).unwrap_or(max).min(max))
    } else {
        // The server answers in its own task, out of the caller's reach: hand out the
        // workload's completions in arrival order instead (the same multiset; with OpenAI's
        // no-refund charging they change no strategy's timing either way).
        let completions: Vec<u64> = jobs.iter().map(|j| j.completion_tokens).collect();
        let next = AtomicUsize::new(0);
        provider.completion_with(move |max| {
            let i = next.fetch_add(1, Ordering::Relaxed) % completions.len();
            completions[i].min(max)
        })
    };
    let server = (!mode.paused).then(|| ServerThread::start(provider.clone()));
    LocalSet::new().block_on(&runtime, async {
        let target = match &server {
            None => Target::Mock(provider.clone()),
            Some(server) => Target::Http(ChatClient::new(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("an HTTP client"),
                &server.server.base_url(),
                None,
            )),
        };
        let target = Rc::new(target);
        let governor = Rc::new(Governor::new(mode.limits, mode.paused));
        let minimum = minimum(mode.limits, jobs, mode.latency).0;

        let start = Instant::now();
        let deadline = start + timeout;
        let mut tasks = JoinSet::new();
        for i in 0..jobs.len() {
            let completion = jobs[i].completion_tokens;
            let (jobs, target, governor) = (jobs.clone(), target.clone(), governor.clone());
            let call = async move {
                let job = &jobs[i];
                let mut rng = Rng::new(SEED ^ (i as u64 + 1));
                match strategy {
                    Strategy::Ratelimited => via_ratelimited(&target, job).await,
                    Strategy::Retry => send_with_retries(&target, job, &mut rng).await,
                    Strategy::Governor => match governor.admit(job.charge()).await {
                        Ok(()) => send_with_retries(&target, job, &mut rng).await,
                        Err(e) => Err(format!("governor: {e}")),
                    },
                }
            };
            tasks.spawn_local(COMPLETION.scope(completion, async move {
                let outcome = call.await;
                (outcome, Instant::now())
            }));
        }
        let (completed, failed) = (Cell::new(0), Cell::new(0));
        let finished = Cell::new(start);
        let first_loss = RefCell::new(None);
        let all_done = async {
            while let Some(joined) = tasks.join_next().await {
                let (outcome, at) = joined.expect("a request task panicked");
                match outcome {
                    Ok(()) => completed.set(completed.get() + 1),
                    Err(reason) => {
                        failed.set(failed.get() + 1);
                        first_loss.borrow_mut().get_or_insert(reason);
                    }
                }
                finished.set(finished.get().max(at));
            }
        };
        // Whatever is still running at the deadline is lost; the makespan is then the deadline.
        if tokio::time::timeout_at(deadline, all_done).await.is_err() {
            finished.set(deadline);
        }
        let stats = provider.stats();
        let since_start = |at: Instant| at.saturating_duration_since(start);
        Row {
            strategy,
            makespan: finished.get() - start,
            minimum,
            rate_limited: stats.rate_limited,
            requests: jobs.len(),
            completed: completed.get(),
            failed: failed.get(),
            unfinished: tasks.len(),
            lost: failed.get() + tasks.len(),
            check: provider.check_within_limits(),
            first_admission: provider.admissions().first().map(|a| since_start(a.at)),
            first_rejection: provider.rejections().first().map(|r| Rejected {
                at: since_start(r.at),
                kind: r.kind,
                retry_after: r.retry_after,
            }),
            first_loss: first_loss.into_inner(),
        }
    })
}

/// The mock server on a runtime of its own, as a remote server would be: its arrival times
/// (which set its buckets) do not wait for the client's thread.
struct ServerThread {
    server: MockServer,
    // Dropped after the server, which stops its task on this runtime.
    _runtime: tokio::runtime::Runtime,
}

impl ServerThread {
    fn start(provider: MockProvider) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let server = runtime
            .block_on(MockServer::serve(provider))
            .expect("bind 127.0.0.1");
        ServerThread {
            server,
            _runtime: runtime,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report

fn print_mode(mode: &Mode, jobs: &[Job], timeout: Duration, rows: &[Row]) {
    let total: u64 = jobs.iter().map(Job::charge).sum();
    let prompts: u64 = jobs.iter().map(|j| j.prompt_tokens).sum();
    let completions: u64 = jobs.iter().map(|j| j.completion_tokens).sum();
    let (min, tokens, requests) = minimum(mode.limits, jobs, mode.latency);
    println!("== {} ==", mode.title);
    println!(
        "{} requests, {} RPM / {} TPM, latency {:?}; charge Σ(prompt + max_tokens) = {total} \
         tokens ({prompts} prompt, mean {:.0}; completions {completions})",
        jobs.len(),
        mode.limits.rpm,
        mode.limits.tpm,
        mode.latency,
        prompts as f64 / jobs.len() as f64,
    );
    println!(
        "minimum makespan = max(tokens {:.3} s, requests {:.3} s) + latency {:.3} s = {:.3} s; \
         timeout per strategy {:.0} s",
        tokens.as_secs_f64(),
        requests.as_secs_f64(),
        mode.latency.as_secs_f64(),
        min.as_secs_f64(),
        timeout.as_secs_f64(),
    );
    if mode.paused {
        println!(
            "(c) in paused time: governor's check_n on a tokio-clock Clock, slept with \
             tokio::time::sleep (its until_n_ready runs on real time)"
        );
    }
    println!();
    println!(
        "{:<31} | {:>10} | {:>10} | {:>7} | {:>6} | {:>5} | {:>9}",
        "strategy", "makespan", "min", "ratio", "429s", "lost", "completed"
    );
    println!(
        "{:-<32}+{:-<12}+{:-<12}+{:-<9}+{:-<8}+{:-<7}+{:-<10}",
        "", "", "", "", "", "", ""
    );
    for row in rows {
        // A strategy that lost requests finished early by not doing them: flag its ratio.
        let flag = if row.lost > 0 { "*" } else { " " };
        println!(
            "{:<31} | {:>8.3} s | {:>8.3} s | {:>5.3}x{flag} | {:>6} | {:>5} | {:>9}",
            row.strategy.label(),
            row.makespan.as_secs_f64(),
            row.minimum.as_secs_f64(),
            row.ratio(),
            row.rate_limited,
            row.lost,
            format!("{}/{}", row.completed, row.requests),
        );
    }
    if rows.iter().any(|r| r.lost > 0) {
        println!("* lost requests: the makespan only covers the work done, not comparable");
    }
    println!();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for row in rows {
        let mut line = format!("{} server check: ", row.strategy.tag());
        match &row.check {
            Ok(()) => line.push_str("every admission fit the server's buckets"),
            Err(violation) => line.push_str(&format!("VIOLATION: {violation}")),
        }
        if let Some(at) = row.first_admission {
            line.push_str(&format!("; first admission at {}", ms(at)));
        }
        if let Some(first) = &row.first_rejection {
            line.push_str(&format!(
                "; first 429 at {} ({:?}, retry-after {})",
                ms(first.at),
                first.kind,
                first.retry_after.map_or("none".to_owned(), ms)
            ));
        }
        if row.unfinished > 0 {
            line.push_str(&format!("; {} unfinished at the timeout", row.unfinished));
        }
        println!("{line}");
        if let Some(reason) = &row.first_loss {
            println!("    first request given up: {reason}");
        }
    }
    println!();
}

/// The acceptance bound for ratelimited in this mode, and whether its row meets it.
fn verdict(mode: &Mode, rows: &[Row]) -> (bool, String) {
    let bound = if mode.paused { 1.03 } else { 1.10 };
    let row = rows
        .iter()
        .find(|r| r.strategy == Strategy::Ratelimited)
        .expect("ratelimited ran");
    let mut misses = Vec::new();
    if row.rate_limited > 0 {
        misses.push(format!("{} 429s, not 0", row.rate_limited));
    }
    if row.ratio() > bound {
        misses.push(format!("ratio {:.3}x > {bound:.2}x", row.ratio()));
    }
    if row.lost > 0 || row.completed + row.failed + row.unfinished != row.requests {
        misses.push(format!("{} of {} requests lost", row.lost, row.requests));
    }
    if let Err(violation) = &row.check {
        misses.push(format!("server limits exceeded: {violation}"));
    }
    let met = misses.is_empty();
    let text = format!(
        "{}: {} 429s, {:.3}x (bound {bound:.2}x), {}/{} completed{}",
        if mode.paused { "paused" } else { "real time" },
        row.rate_limited,
        row.ratio(),
        row.completed,
        row.requests,
        if met {
            String::new()
        } else {
            format!(" [missed: {}]", misses.join(", "))
        },
    );
    (met, text)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Build the tokenizer before any clock starts.
    encoding_for_model(MODEL).warm();
    let mut summary = Vec::new();
    for mode in [&PAUSED, &REAL] {
        let jobs = Rc::new(workload(mode.requests, !mode.paused));
        let minimum = minimum(mode.limits, &jobs, mode.latency).0;
        // Long enough for a strategy 3x off the minimum; in real time, short enough that the
        // whole example stays around a minute.
        let timeout = if mode.paused {
            minimum * 3
        } else {
            (minimum * 2).max(Duration::from_secs(30))
        };
        let started = std::time::Instant::now();
        let rows: Vec<Row> = Strategy::ALL
            .into_iter()
            .map(|strategy| run(mode, &jobs, strategy, timeout))
            .collect();
        print_mode(mode, &jobs, timeout, &rows);
        println!(
            "({} took {:.1} s of wall-clock time)",
            mode.title,
            started.elapsed().as_secs_f64()
        );
        println!();
        summary.push(verdict(mode, &rows));
    }
    let met = summary.iter().all(|(met, _)| *met);
    let details: Vec<&str> = summary.iter().map(|(_, text)| text.as_str()).collect();
    println!(
        "ratelimited at headroom 1.0 {}: {}",
        if met {
            "meets the acceptance bounds"
        } else {
            "MISSES the acceptance bounds"
        },
        details.join("; ")
    );
}
