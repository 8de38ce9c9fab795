//! The report: one table per mode, the server's checks, and the acceptance verdict.

use std::time::Duration;

use crate::gateway::describe_window;
use crate::run::Row;
use crate::workload::{minimum, Job};
use crate::Mode;

pub(crate) fn print_mode(mode: &Mode, jobs: &[Job], timeout: Duration, rows: &[Row]) {
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
    print_checks(rows, false);
}

/// Each row's server check, first 429, losses and (for `#[rate_limited]`) what the family
/// ended with: its charge correction and, against a server counting per window, how it counted.
pub(crate) fn print_checks(rows: &[Row], windowed: bool) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for row in rows {
        let mut line = format!("{} server check: ", row.strategy.tag());
        match &row.check {
            // The server admits only what fits its buckets (or windows) and answers 429 to the
            // rest: the check says the server held, the 429s say what the client cost it.
            Ok(()) if row.rate_limited == 0 => {
                line.push_str("every request fit the server's limits, none was refused")
            }
            Ok(()) => line.push_str(&format!(
                "the server admitted only what its limits allowed and refused {} requests with \
                 a 429",
                row.rate_limited
            )),
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
        if row.failed > 0 {
            line.push_str(&format!("; {} given up by the client", row.failed));
        }
        if row.unfinished > 0 {
            line.push_str(&format!("; {} unfinished at the timeout", row.unfinished));
        }
        if let Some(correction) = row.correction {
            line.push_str(&format!("; charge correction at the end {correction:.4}"));
        }
        if let Some(window) = row.window.filter(|_| windowed) {
            line.push_str(&format!(
                "; the family counts {} at the end",
                describe_window(window)
            ));
        }
        println!("{line}");
        if let Some(reason) = &row.first_loss {
            println!("    first request given up: {reason}");
        }
    }
    println!();
}

/// The acceptance bound for ratelimited in this mode (0 429s, nothing lost, within 1.01x of
/// the minimum, the charge correction at 1.0 against this server that counts exactly), and
/// whether each of its rows meets it.
pub(crate) fn verdicts(mode: &Mode, rows: &[Row]) -> Vec<(bool, String)> {
    rows.iter()
        .filter(|r| r.strategy.is_ratelimited())
        .map(|row| verdict(mode, row))
        .collect()
}

fn verdict(mode: &Mode, row: &Row) -> (bool, String) {
    let bound = 1.01;
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
    if let Some(correction) = row.correction.filter(|c| *c != 1.0) {
        misses.push(format!("charge correction {correction:.4}, not 1.0"));
    }
    let met = misses.is_empty();
    let text = format!(
        "{} {}: {} 429s, {:.3}x (bound {bound:.2}x), {}/{} completed{}",
        row.strategy.tag(),
        mode.short,
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
