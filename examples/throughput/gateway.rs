//! The gateway modes (`--gateway`): the mock counting per fixed or sliding minute, with a
//! gateway's headers or OpenAI's, their lower bound on the makespan, the check of the server's
//! admissions against its windows, and their table (one column per mode).

use std::time::Duration;

use ratelimited::limiter::Window;
use ratelimited::testing::{Admission, MockHeaders, MockLimits, MockWindow};
use tokio::time::Instant;

use crate::report::print_checks;
use crate::run::Row;
use crate::workload::Job;
use crate::Mode;

/// The minute every window of the mock spans.
const MINUTE: Duration = Duration::from_secs(60);

/// Requests in each gateway mode.
const REQUESTS: usize = 300;
/// 300 requests at 120 RPM need 3 windows; their Σ(prompt + `max_tokens`) of about 281,000
/// tokens at 100,000 TPM needs 3 as well, and the first two windows are full of tokens before
/// they are of requests (about 106 requests each): both dimensions bind.
const LIMITS: MockLimits = MockLimits::new(120, 100_000);
const LATENCY: Duration = Duration::from_secs(1);

/// A gateway mode: paused time (a window is a whole minute, so real time would take minutes
/// per run), the same workload and limits, one way of counting and answering.
const fn gateway(
    title: &'static str,
    short: &'static str,
    window: MockWindow,
    headers: MockHeaders,
) -> Mode {
    Mode {
        title,
        short,
        paused: true,
        requests: REQUESTS,
        limits: LIMITS,
        latency: LATENCY,
        window,
        headers,
    }
}

/// The gateway modes, in the table's column order.
pub(crate) const GATEWAY: [Mode; 4] = [
    // LiteLLM's proxy: a count per minute, the limit and what remains but no reset, and a 429
    // whose only hint is `llm_provider-retry-after`.
    gateway(
        "fixed, gateway headers",
        "fixed/gateway",
        MockWindow::Fixed,
        MockHeaders::Gateway,
    ),
    // A fixed window behind OpenAI's headers: the resets count down to the boundary.
    gateway(
        "fixed, OpenAI headers",
        "fixed/OpenAI",
        MockWindow::Fixed,
        MockHeaders::Provider,
    ),
    // A sliding log (any 60 s) without resets.
    gateway(
        "sliding, gateway headers",
        "sliding/gateway",
        MockWindow::Sliding,
        MockHeaders::Gateway,
    ),
    // A sliding log with resets: full again 60 s after the newest admission.
    gateway(
        "sliding, OpenAI headers",
        "sliding/OpenAI",
        MockWindow::Sliding,
        MockHeaders::Provider,
    ),
];

/// The value of `RATE_LIMITED_<FAMILY>_WINDOW` that describes `window`.
pub(crate) fn window_name(window: MockWindow) -> &'static str {
    match window {
        MockWindow::Fixed => "fixed",
        MockWindow::Sliding => "sliding",
        _ => "continuous",
    }
}

/// The lower bound on a windowed mode's makespan (see the module docs of `main.rs`).
pub(crate) struct WindowMinimum {
    /// From the provider's creation to the last response, at the earliest.
    pub(crate) makespan: Duration,
    /// Windows the requests need: `ceil(requests / RPM)`.
    pub(crate) request_windows: u64,
    /// Windows the tokens need: `ceil(Σ charge / TPM)`.
    pub(crate) token_windows: u64,
    /// Windows the jobs fill taken in submission order, each window taking the next jobs while
    /// both limits hold (what a first-in first-out client can reach; never below the bound).
    pub(crate) packed_in_order: u64,
}

/// The lower bound for a windowed mode; `None` for a continuous bucket.
pub(crate) fn window_minimum(mode: &Mode, jobs: &[Job]) -> Option<WindowMinimum> {
    if mode.window == MockWindow::Continuous {
        return None;
    }
    let limits = mode.limits;
    let total: u64 = jobs.iter().map(Job::charge).sum();
    let request_windows = (jobs.len() as u64).div_ceil(limits.rpm);
    let token_windows = total.div_ceil(limits.tpm);
    let windows = request_windows.max(token_windows).max(1);
    let mut packed_in_order = 0;
    let (mut requests, mut tokens) = (limits.rpm, limits.tpm);
    for job in jobs {
        if requests == limits.rpm || tokens + job.charge() > limits.tpm {
            packed_in_order += 1;
            (requests, tokens) = (0, 0);
        }
        requests += 1;
        tokens += job.charge();
    }
    Some(WindowMinimum {
        makespan: MINUTE * (windows - 1) as u32 + mode.latency,
        request_windows,
        token_windows,
        packed_in_order,
    })
}

/// Checks the server's admissions against its windows: at most the limits in each fixed minute
/// from `created`, or in any 60 s for a sliding one (a window `(t − 60 s, t]`, as the mock
/// counts: an admission leaves it exactly 60 s later). The first violation, if any.
pub(crate) fn check_windows(
    mode: &Mode,
    created: Instant,
    admissions: &[Admission],
) -> Result<(), String> {
    let limits = mode.limits;
    let mut sorted = admissions.to_vec();
    sorted.sort_by_key(|a| a.at);
    let over = |requests: u64, tokens: u64, from: Instant, to: Instant| {
        (requests > limits.rpm || tokens > limits.tpm).then(|| {
            format!(
                "{requests} requests and {tokens} tokens admitted from {:.3} s to {:.3} s, \
                 over {} RPM / {} TPM",
                from.saturating_duration_since(created).as_secs_f64(),
                to.saturating_duration_since(created).as_secs_f64(),
                limits.rpm,
                limits.tpm,
            )
        })
    };
    let mut first = 0;
    let (mut requests, mut tokens) = (0u64, 0u64);
    for (i, admission) in sorted.iter().enumerate() {
        let leaves = |earlier: &Admission| match mode.window {
            MockWindow::Fixed => {
                let minute = |at: Instant| at.saturating_duration_since(created).as_secs() / 60;
                minute(earlier.at) != minute(admission.at)
            }
            _ => earlier.at + MINUTE <= admission.at,
        };
        while first < i && leaves(&sorted[first]) {
            requests -= 1;
            tokens -= sorted[first].tokens;
            first += 1;
        }
        requests += 1;
        tokens += admission.tokens;
        if let Some(violation) = over(requests, tokens, sorted[first].at, admission.at) {
            return Err(violation);
        }
    }
    Ok(())
}

/// One table for every gateway mode (a column each), then each mode's server checks.
pub(crate) fn print_gateway(results: &[(&Mode, Vec<Row>)], jobs: &[Job], timeout: Duration) {
    let Some((first, _)) = results.first() else {
        return;
    };
    let total: u64 = jobs.iter().map(Job::charge).sum();
    println!("== gateway modes: paused time, in-process MockProvider counting per minute ==");
    println!(
        "{} requests, {} RPM / {} TPM per window, latency {:?}; charge Σ(prompt + max_tokens) = \
         {total} tokens, counted on arrival",
        jobs.len(),
        first.limits.rpm,
        first.limits.tpm,
        first.latency,
    );
    if let Some(min) = window_minimum(first, jobs) {
        let windows = min.request_windows.max(min.token_windows);
        println!(
            "windows needed: requests ⌈{} / {}⌉ = {}, tokens ⌈{total} / {}⌉ = {}; in submission \
             order the jobs fill {}",
            jobs.len(),
            first.limits.rpm,
            min.request_windows,
            first.limits.tpm,
            min.token_windows,
            min.packed_in_order,
        );
        println!(
            "minimum makespan = ({windows} − 1) × 60 s + latency {:.3} s = {:.3} s (fixed: from \
             the provider's creation; sliding: from the start); timeout per strategy {:.0} s",
            first.latency.as_secs_f64(),
            min.makespan.as_secs_f64(),
            timeout.as_secs_f64(),
        );
    }
    println!(
        "(a) is told the limits only and learns the window from the answers, if it can; (w) is \
         told RATE_LIMITED_BENCH_MODEL_WINDOW=<the column's window>; (c) retries 429s as (b), \
         reading retry-after-ms or retry-after (not a gateway's llm_provider-retry-after)"
    );
    println!("each cell: makespan, ratio to the minimum, 429s (* = requests lost)");
    println!();
    const LABEL: usize = 31;
    const CELL: usize = 24;
    let mut header = format!("{:<LABEL$}", "strategy");
    let mut rule = format!("{:-<width$}", "", width = LABEL + 1);
    for (mode, _) in results {
        header.push_str(&format!(" | {:<CELL$}", mode.title));
        rule.push_str(&format!("+{:-<width$}", "", width = CELL + 2));
    }
    println!("{}", header.trim_end());
    println!("{rule}");
    let mut line = format!("{:<LABEL$}", "minimum");
    for (_, rows) in results {
        let minimum = rows.first().map_or(Duration::ZERO, |r| r.minimum);
        line.push_str(&format!(
            " | {:<CELL$}",
            format!("{:>7.3} s", minimum.as_secs_f64())
        ));
    }
    println!("{}", line.trim_end());
    let strategies: Vec<_> = results
        .first()
        .map(|(_, rows)| rows.iter().map(|r| r.strategy).collect())
        .unwrap_or_default();
    for (i, strategy) in strategies.iter().enumerate() {
        let mut line = format!("{:<LABEL$}", strategy.gateway_label());
        for (_, rows) in results {
            let row = &rows[i];
            let flag = if row.lost > 0 { "*" } else { " " };
            line.push_str(&format!(
                " | {:<CELL$}",
                format!(
                    "{:>7.3} s {:>6.3}x{flag} {:>5}",
                    row.makespan.as_secs_f64(),
                    row.ratio(),
                    row.rate_limited
                )
            ));
        }
        println!("{}", line.trim_end());
    }
    println!();
    for (mode, rows) in results {
        println!("-- {} --", mode.title);
        print_checks(rows, true);
    }
}

/// How the family counted at the end, as the checks print it.
pub(crate) fn describe_window(window: Window) -> &'static str {
    match window {
        Window::Continuous => "a continuous bucket",
        Window::Sliding => "at most the limit in any window",
        Window::Fixed => "per the server's fixed windows",
        _ => "another window",
    }
}
