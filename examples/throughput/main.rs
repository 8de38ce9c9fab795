//! Throughput benchmark: one workload through six client strategies against the mock
//! provider's OpenAI-style buckets, in paused time and in real time; and, with `--gateway`,
//! against the mock counting per minute as LLM gateways do.
//!
//! ```sh
//! cargo run --release --example throughput              # all six strategies, both modes
//! cargo run --release --example throughput -- a c       # only (a) and (c)
//! cargo run --release --example throughput -- --paused  # paused time only (about a second)
//! cargo run --release --example throughput -- --gateway # the gateway modes (paused time)
//! cargo run --release --example throughput -- --gateway a w  # only (a) and (w) there
//! ```
//!
//! A letter names a strategy of the table run (`a` to `g`; with `--gateway`, `a`, `w`, `c`),
//! a flag is `--paused` or `--gateway`; anything else is an error naming what is accepted.
//!
//! **Workload.** Chat requests with prompts log-normal around 600 tokens (median 600, σ = 0.5,
//! from a seeded generator, so every run and every strategy sees the same requests),
//! `max_tokens` 256, completions 20-100 % of that. All requests are submitted at t = 0, as a
//! batch job does.
//!
//! **Strategies.** (d) and (e) are what people run instead of a limiter:
//! - (a) `#[rate_limited]` at headroom 1.0, told the server's RPM and TPM.
//! - (b) no limiter: on a 429 wait `retry-after-ms` (else `retry-after`, else exponential backoff
//!   0.5 s × 2^k with jitter, at most 8 s) and try again, at most 10 times, as most SDKs do.
//! - (c) governor: an RPM limiter and a TPM limiter (burst = the limit), awaited one after the
//!   other (`until_ready`, then `until_n_ready(prompt + max_tokens)`); no reconciliation, no FIFO.
//!   A 429 that still comes back is retried as in (b).
//! - (d) no limiter, retry every 429 with exponential backoff (0.5 s doubling, ±50 % jitter,
//!   at most 60 s) until it succeeds, ignoring the server's hint: async-openai's default.
//! - (e) the OpenAI cookbook's parallel processor: tiktoken estimate (prompt + max_tokens),
//!   request and token capacities refilling per second up to one minute's limit, dispatch in
//!   order, a 15 s pause after any 429, 5 attempts per request.
//! - (f) (a) reading the answers without `openai-processing-ms`, as from a server that does not
//!   send it (Anthropic): each count may be as old as the whole round trip, so the limiter
//!   trails the server by about one latency, and must still neither draw a 429 nor raise its
//!   charge correction above 1.0 (the server counts exactly what the limiter estimates).
//! - (g) (a)'s requests sent through a `reqwest_middleware` client with `ratelimited`'s
//!   `RateLimit` middleware instead of an annotated function (real time only, and only when
//!   built with the `reqwest-middleware` feature: `--features mock-server,reqwest-middleware`
//!   or `--all-features`), held to the same bounds as (a).
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
//! **Gateway modes (`--gateway`).** The mock counting as an LLM gateway does: at most the
//! limit per window instead of a refilling bucket, the charge (prompt + `max_tokens`) still
//! counted on arrival. Four servers, one column each:
//! - fixed window, gateway headers (LiteLLM's proxy): the limit per fixed minute counted from
//!   the provider's creation; answers carry `x-ratelimit-{limit,remaining}-*` but no reset, and
//!   a 429's only hint is the vendor-prefixed `llm_provider-retry-after`;
//! - fixed window, OpenAI's headers (the resets count down to the window's boundary);
//! - sliding window (at most the limit in any 60 s), gateway headers;
//! - sliding window, OpenAI's headers (the reset is 60 s after the newest admission).
//!
//! In each, three strategies in the same run: (a) `#[rate_limited]` told the RPM and TPM only,
//! so that it learns the window from the answers if it can; (w) the same told
//! `RATE_LIMITED_BENCH_MODEL_WINDOW=fixed` or `sliding` (the column's window); (c) governor
//! as above, whose retries read `retry-after-ms` or `retry-after` as (b) does and so not a
//! gateway's `llm_provider-retry-after` (they back off exponentially there instead). Each
//! cell prints the makespan, its ratio to the minimum and the server's 429s; below the table,
//! each run's server check (its admissions counted per fixed minute from the provider's
//! creation, or over every 60 s), first 429, losses, and the family's charge correction and
//! window at the end. The acceptance line holds each ratelimited run to 0 429s, nothing lost,
//! 1.01x the minimum and a charge correction of 1.0 (the server counts exactly what the
//! limiter estimates).
//!
//! Workload: 300 requests at 120 RPM / 100,000 TPM, latency 1 s. The Σ(prompt + `max_tokens`)
//! of about 285,000 tokens fills the first two windows before their 120 requests (about 106
//! requests each): both dimensions bind. Paused time only, about 0.1 s for all twelve runs: the
//! mock's window is a whole minute, so any run that needs a second window takes over a minute
//! of real time (two here), which twelve runs would turn into half an hour.
//!
//! **Minimum in a gateway mode.** A window admits at most `RPM` requests and `TPM` tokens, so
//! the workload needs at least `k = max(⌈requests / RPM⌉, ⌈Σ charge / TPM⌉)` windows (here
//! `max(⌈300 / 120⌉, ⌈284,996 / 100,000⌉) = 3`). Fixed: the windows are the minutes from the
//! provider's creation, and the admissions span `k` of them, so the last cannot come before
//! the start of the `k`-th, `(k − 1) × 60 s` after the creation. Sliding: the half-open
//! minutes `[0, 60 s)`, `[60 s, 120 s)`, ... from the start are windows of the server too, so
//! the same `k` of them are needed and the last admission comes at `(k − 1) × 60 s` at the
//! earliest. Either way the minimum makespan is `(k − 1) × 60 s` plus the latency, counted
//! from the provider's creation (the start, in paused time). `⌈Σ charge / TPM⌉` bounds a
//! packing whose requests are indivisible, so the table also prints how many windows the jobs
//! fill taken in submission order (each window taking the next ones while both limits hold):
//! here 3 as well, so the bound is reachable.
//!
//! **Reading the real-time numbers.** A server's bucket restarts its refill when the first
//! request *arrives*; a client limiter when it *reserves* it, tens of milliseconds earlier when
//! hundreds of requests start at once (the client's work on the burst, new connections). And a
//! response's `x-ratelimit-remaining-*` is the server's count from when the request arrived, not
//! from when the answer is read. ratelimited keeps where its buckets stood at each reservation
//! and reads each count against that, bounding when the server counted by the round trip less
//! the server's `openai-processing-ms` (the mock sends it, as OpenAI does): it charges the
//! first request's time on the wire once and otherwise follows the server to within the
//! answer's way back. governor starts its buckets before the first request arrives and stays
//! ahead: it gets a short 429 on most requests after the first burst (the `first admission` /
//! `first 429` lines show when).

#[path = "../common/mod.rs"]
mod common;
mod cookbook_client;
mod gateway;
mod governor_client;
#[cfg(feature = "reqwest-middleware")]
mod middleware_client;
#[path = "../common/peer.rs"]
mod peer;
mod ratelimited_client;
mod report;
mod retry_client;
mod run;
mod transport;
mod workload;

use std::rc::Rc;
use std::time::Duration;

use ratelimited::testing::{MockHeaders, MockLimits, MockWindow};
use ratelimited::tokens::encoding_for_model;

use gateway::{print_gateway, window_minimum, GATEWAY};
use report::{print_mode, verdicts};
use run::{run, Row, Strategy};
use workload::{minimum, workload, MODEL};

/// One way of running the benchmark.
struct Mode {
    title: &'static str,
    /// Its name in the acceptance line.
    short: &'static str,
    paused: bool,
    requests: usize,
    limits: MockLimits,
    latency: Duration,
    /// How the server counts its limits.
    window: MockWindow,
    /// Which rate-limit headers and 429 hints it answers with.
    headers: MockHeaders,
}

const PAUSED: Mode = Mode {
    title: "paused time, in-process MockProvider",
    short: "paused",
    paused: true,
    requests: 2_000,
    // gpt-4o-mini at tier-1. Both limits divide 60 s into whole nanoseconds, so governor's
    // truncated emission interval is exact and the comparison is not about rounding.
    limits: MockLimits::new(500, 200_000),
    latency: Duration::from_secs(1),
    window: MockWindow::Continuous,
    headers: MockHeaders::Provider,
};

const REAL: Mode = Mode {
    title: "real time, MockServer over HTTP on 127.0.0.1",
    short: "real time",
    paused: false,
    requests: 300,
    // Scaled so the first minute's burst covers most of the work and the refill the rest
    // (about 11 s); like the paused limits, tokens bind and requests do not, and both
    // emission intervals are whole nanoseconds (200 ms and 250 µs).
    limits: MockLimits::new(300, 240_000),
    latency: Duration::from_millis(200),
    window: MockWindow::Continuous,
    headers: MockHeaders::Provider,
};

/// What the flags select.
struct Flags {
    /// `--paused`: paused time only.
    paused_only: bool,
    /// `--gateway`: the gateway modes (paused time only) instead of OpenAI's buckets.
    gateway: bool,
}

fn main() {
    let (args, flags): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| !a.starts_with("--"));
    let flags = flags_from_args(&flags).unwrap_or_else(|message| exit_with(&message));
    let pool = if flags.gateway {
        &Strategy::GATEWAY[..]
    } else {
        &Strategy::ALL[..]
    };
    let strategies =
        strategies_from_args(args.into_iter(), pool).unwrap_or_else(|message| exit_with(&message));
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Build the tokenizer before any clock starts.
    encoding_for_model(MODEL).warm();
    if flags.gateway {
        run_gateway(&strategies);
        return;
    }
    let mut summary = Vec::new();
    let modes = if flags.paused_only {
        &[&PAUSED][..]
    } else {
        &[&PAUSED, &REAL][..]
    };
    for mode in modes {
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
        let rows: Vec<Row> = strategies
            .iter()
            .filter(|strategy| strategy.runs_in(mode.paused))
            .map(|strategy| run(mode, &jobs, *strategy, timeout))
            .collect();
        print_mode(mode, &jobs, timeout, &rows);
        println!(
            "({} took {:.1} s of wall-clock time)",
            mode.title,
            started.elapsed().as_secs_f64()
        );
        println!();
        summary.extend(verdicts(mode, &rows));
    }
    print_summary("ratelimited at headroom 1.0", &summary);
}

/// Every gateway mode with `strategies`, in paused time: one table, a column per mode.
fn run_gateway(strategies: &[Strategy]) {
    // Every gateway mode runs the same workload against the same limits.
    let jobs = Rc::new(workload(GATEWAY[0].requests, false));
    let minimum = window_minimum(&GATEWAY[0], &jobs)
        .expect("the gateway modes count per window")
        .makespan;
    let timeout = minimum * 3;
    let started = std::time::Instant::now();
    let results: Vec<(&Mode, Vec<Row>)> = GATEWAY
        .iter()
        .map(|mode| {
            let rows = strategies
                .iter()
                .map(|strategy| run(mode, &jobs, *strategy, timeout))
                .collect();
            (mode, rows)
        })
        .collect();
    print_gateway(&results, &jobs, timeout);
    println!(
        "(the gateway modes took {:.1} s of wall-clock time)",
        started.elapsed().as_secs_f64()
    );
    println!();
    let summary: Vec<(bool, String)> = results
        .iter()
        .flat_map(|(mode, rows)| verdicts(mode, rows))
        .collect();
    print_summary(
        "ratelimited at headroom 1.0 against the gateways (window minimum)",
        &summary,
    );
}

/// The acceptance line over every `#[rate_limited]` row run.
fn print_summary(who: &str, summary: &[(bool, String)]) {
    if summary.is_empty() {
        return;
    }
    let met = summary.iter().all(|(met, _)| *met);
    let details: Vec<&str> = summary.iter().map(|(_, text)| text.as_str()).collect();
    println!(
        "{who} {}: {}",
        if met {
            "meets the acceptance bounds"
        } else {
            "MISSES the acceptance bounds"
        },
        details.join("; ")
    );
}

fn exit_with(message: &str) -> ! {
    eprintln!("throughput: {message}");
    std::process::exit(2);
}

/// `--paused` and `--gateway`, each at most once, in any order.
fn flags_from_args(flags: &[String]) -> Result<Flags, String> {
    let mut selected = Flags {
        paused_only: false,
        gateway: false,
    };
    for flag in flags {
        let slot = match flag.as_str() {
            "--paused" => &mut selected.paused_only,
            "--gateway" => &mut selected.gateway,
            _ => {
                return Err(format!(
                    "unknown flag `{flag}`: the flags are --paused (paused time only) and \
                     --gateway (the gateway modes, which run in paused time only)"
                ))
            }
        };
        if std::mem::replace(slot, true) {
            return Err(format!("`{flag}` is given twice"));
        }
    }
    Ok(selected)
}

/// The strategies of `pool` named on the command line by letter (as in the table), in the
/// table's order; all of `pool` when none is named.
fn strategies_from_args(
    args: impl Iterator<Item = String>,
    pool: &[Strategy],
) -> Result<Vec<Strategy>, String> {
    let letters = |strategies: &[Strategy]| {
        strategies
            .iter()
            .map(|s| s.letter())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chosen = Vec::new();
    for arg in args {
        let strategy = pool
            .iter()
            .copied()
            .find(|s| s.letter() == arg.as_str())
            .ok_or_else(|| {
                format!(
                    "unknown strategy `{arg}`: name any of {} (all run when none is named; \
                     with --gateway: {})",
                    letters(&Strategy::ALL),
                    letters(&Strategy::GATEWAY)
                )
            })?;
        chosen.push(strategy);
    }
    Ok(pool
        .iter()
        .copied()
        .filter(|s| chosen.is_empty() || chosen.contains(s))
        .collect())
}
