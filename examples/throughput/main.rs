//! Throughput benchmark: one workload through three client strategies against the mock
//! provider's OpenAI-style buckets, in paused time and in real time.
//!
//! ```sh
//! cargo run --release --example throughput             # all six strategies, both modes
//! cargo run --release --example throughput -- a c      # only (a) and (c)
//! cargo run --release --example throughput -- --paused # paused time only (about a second)
//! ```
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
mod governor_client;
mod ratelimited_client;
mod report;
mod retry_client;
mod run;
mod transport;
mod workload;

use std::rc::Rc;
use std::time::Duration;

use ratelimited::testing::MockLimits;
use ratelimited::tokens::encoding_for_model;

use report::{print_mode, verdicts};
use run::{run, Row, Strategy};
use workload::{minimum, workload, MODEL};

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

fn main() {
    let (args, flags): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| !a.starts_with("--"));
    let paused_only = match flags.as_slice() {
        [] => false,
        [flag] if flag == "--paused" => true,
        _ => {
            eprintln!("throughput: the only flag is --paused (paused time only)");
            std::process::exit(2);
        }
    };
    let strategies = match strategies_from_args(args.into_iter()) {
        Ok(strategies) => strategies,
        Err(message) => {
            eprintln!("throughput: {message}");
            std::process::exit(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Build the tokenizer before any clock starts.
    encoding_for_model(MODEL).warm();
    let mut summary = Vec::new();
    let modes = if paused_only {
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
    if summary.is_empty() {
        return;
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

/// The strategies named on the command line by letter (`a` to `e`, as in the table), in the
/// table's order; all of them when none is named.
fn strategies_from_args(args: impl Iterator<Item = String>) -> Result<Vec<Strategy>, String> {
    let mut chosen = Vec::new();
    for arg in args {
        let strategy = Strategy::ALL
            .into_iter()
            .find(|s| s.letter() == arg.as_str())
            .ok_or_else(|| {
                let letters: Vec<&str> = Strategy::ALL.iter().map(|s| s.letter()).collect();
                format!(
                    "unknown strategy `{arg}`: name any of {} (all run when none is named)",
                    letters.join(", ")
                )
            })?;
        chosen.push(strategy);
    }
    Ok(Strategy::ALL
        .into_iter()
        .filter(|s| chosen.is_empty() || chosen.contains(s))
        .collect())
}
