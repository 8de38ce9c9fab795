//! The answer of a plan: how long the run takes, how fast it goes, and what binds, minute by
//! minute.

use std::time::Duration;

use super::binding::Binding;
use super::simulation::{duration_ns, Outcome};

use crate::units::cost::Dimension;
use crate::units::quota::Quota;

const MINUTE_NS: u64 = 60_000_000_000;

/// One minute of a planned run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Minute {
    /// When the minute starts, from the start of the run.
    pub start: Duration,
    /// Requests admitted during the minute.
    pub admitted_requests: u64,
    /// Tokens (input plus reserved output) admitted during the minute.
    pub admitted_tokens: u64,
    /// Input tokens admitted during the minute (what ITPM limits).
    pub admitted_input_tokens: u64,
    /// How long, during the minute, a request waited at the head of the queue for a limit.
    pub limited: Duration,
    /// What set the pace: the limit the head waited on longest, or [`Binding::Workers`] when
    /// nobody waited at the head for most of the minute.
    pub binding: Binding,
}

/// The outcome of [`Planner::plan`](super::Planner::plan).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The limits the run was planned against (headroom included).
    pub quota: Quota,
    /// Whether unused output went back to the buckets when each request settled.
    pub refunds_output: bool,
    /// Requests sent.
    pub requests: u64,
    /// From the first request to the last response.
    pub makespan: Duration,
    /// Tokens the provider counts in the end: input plus output after settling.
    pub charged_tokens: u64,
    /// Minute by minute, from the start to the makespan.
    pub minutes: Vec<Minute>,
    /// For each binding, how long it set the pace over the whole run.
    pub time_bound_by: Vec<(Binding, Duration)>,
}

impl Plan {
    /// Builds the report of a finished run.
    pub(crate) fn from_outcome(
        quota: Quota,
        refunds_output: bool,
        output_reserved: u64,
        charged_output: u64,
        outcome: Outcome,
    ) -> Plan {
        let makespan_ns = duration_ns(outcome.makespan);
        let minute_count = usize::try_from(makespan_ns.div_ceil(MINUTE_NS))
            .unwrap_or(usize::MAX)
            .max(1);
        let mut tallies = vec![Tally::default(); minute_count];
        for (record, prompt) in outcome.records.iter().zip(&outcome.prompts) {
            let admitted = &mut tallies[minute_of(record.admitted_at, minute_count)];
            admitted.requests += 1;
            admitted.tokens += prompt + output_reserved;
            admitted.input_tokens += prompt;
            spread_wait(
                &mut tallies,
                record.head_at,
                record.admitted_at,
                record.binding,
            );
        }
        let minutes: Vec<Minute> = tallies
            .iter()
            .enumerate()
            .map(|(index, tally)| {
                let start = index as u64 * MINUTE_NS;
                let length = makespan_ns.saturating_sub(start).min(MINUTE_NS);
                let limited: u64 = tally.waited.iter().sum();
                Minute {
                    start: Duration::from_nanos(start),
                    admitted_requests: tally.requests,
                    admitted_tokens: tally.tokens,
                    admitted_input_tokens: tally.input_tokens,
                    limited: Duration::from_nanos(limited),
                    binding: pace_setter(&tally.waited, length.saturating_sub(limited)),
                }
            })
            .collect();
        let mut total = [0u64; Binding::COUNT];
        for tally in &tallies {
            for (sum, waited) in total.iter_mut().zip(&tally.waited) {
                *sum += waited;
            }
        }
        let limited: u64 = total.iter().sum();
        total[Binding::Workers.index()] = makespan_ns.saturating_sub(limited);
        let time_bound_by = total
            .iter()
            .enumerate()
            .filter(|(_, ns)| **ns > 0)
            .map(|(index, ns)| (Binding::from_index(index), Duration::from_nanos(*ns)))
            .collect();
        let charged_tokens = outcome
            .prompts
            .iter()
            .map(|prompt| prompt + charged_output)
            .sum();
        Plan {
            quota,
            refunds_output,
            requests: outcome.prompts.len() as u64,
            makespan: outcome.makespan,
            charged_tokens,
            minutes,
            time_bound_by,
        }
    }

    /// Requests per minute over the whole run (infinite for a run that takes no time).
    pub fn achieved_rpm(&self) -> f64 {
        self.requests as f64 / self.makespan_minutes()
    }

    /// Tokens the provider counts per minute over the whole run (infinite for a run that
    /// takes no time).
    pub fn achieved_tpm(&self) -> f64 {
        self.charged_tokens as f64 / self.makespan_minutes()
    }

    /// What set the pace for most of the run.
    pub fn binding(&self) -> Binding {
        self.time_bound_by
            .iter()
            .max_by_key(|(binding, time)| (*time, std::cmp::Reverse(*binding)))
            .map_or(Binding::Workers, |(binding, _)| *binding)
    }

    /// The per-minute token limit to measure admitted tokens against, with its capacity:
    /// TPM (against [`Minute::admitted_tokens`]), or ITPM when only input tokens are limited
    /// per minute (Anthropic, Gemini; against [`Minute::admitted_input_tokens`]).
    pub fn tokens_per_minute_limit(&self) -> Option<(Dimension, u64)> {
        [Dimension::TokensPerMinute, Dimension::InputTokensPerMinute]
            .into_iter()
            .find_map(|dimension| Some((dimension, self.quota.capacity(dimension)?)))
    }

    fn makespan_minutes(&self) -> f64 {
        self.makespan.as_secs_f64() / 60.0
    }
}

/// What one minute accumulates.
#[derive(Clone, Default)]
struct Tally {
    requests: u64,
    tokens: u64,
    input_tokens: u64,
    /// Nanoseconds the head waited, per binding index.
    waited: [u64; Binding::COUNT],
}

fn minute_of(ns: u64, minute_count: usize) -> usize {
    // An admission at the very end (zero latency) belongs to the last minute.
    usize::try_from(ns / MINUTE_NS)
        .unwrap_or(usize::MAX)
        .min(minute_count - 1)
}

/// Adds the wait `[from, to)` to every minute it overlaps.
fn spread_wait(tallies: &mut [Tally], from: u64, to: u64, binding: Binding) {
    let mut at = from;
    while at < to {
        let minute = minute_of(at, tallies.len());
        let minute_end = (minute as u64 + 1) * MINUTE_NS;
        let until = if minute + 1 == tallies.len() {
            to
        } else {
            to.min(minute_end)
        };
        tallies[minute].waited[binding.index()] += until - at;
        at = until;
    }
}

/// The binding that took most of a minute: the limits the head waited on, against the time
/// nobody waited (the workers' time).
fn pace_setter(waited: &[u64; Binding::COUNT], unlimited: u64) -> Binding {
    let mut best = (unlimited, Binding::Workers);
    for (index, ns) in waited.iter().enumerate() {
        if *ns > best.0 {
            best = (*ns, Binding::from_index(index));
        }
    }
    best.1
}
