//! The `tracing` targets of long runs, so a subscriber can pick them out
//! (`RUST_LOG=ratelimited::wait=info,ratelimited::breaker=warn`). Fields are listed in the
//! README's "Long runs" section.

use std::time::Duration;

use crate::family::breaker::Transition;
use crate::model::limit_family::LimitFamily;
use crate::units::cost::Cost;
use crate::units::error::Error;
use crate::units::money::thousands;
use crate::units::tenant::Tenant;

/// Waits longer than [`LONG_WAIT`], at info.
pub const WAIT: &str = "ratelimited::wait";
/// Each retry, with its reason and delay, at info.
pub const RETRY: &str = "ratelimited::retry";
/// Breaker transitions: opening at warn, half-open and closing at info.
pub const BREAKER: &str = "ratelimited::breaker";
/// Calls refused by a budget, at warn.
pub const BUDGET: &str = "ratelimited::budget";
/// Prompt estimates far from what the server reports, once per family, at warn.
pub const ESTIMATE: &str = "ratelimited::estimate";
/// Deployment pools, each event with its `pool` and `deployment`: a long wait in the pool's
/// queue and a deployment held by a 429 at info; a deployment skipped for its quota and a call
/// no deployment could take at warn.
pub const POOL: &str = "ratelimited::pool";

/// How many answers with usage a family needs before its estimates are judged.
pub const ESTIMATE_DRIFT_CALLS: u64 = 10;
/// Estimates above this multiple of the server's input tokens (or below its inverse) are told.
pub const ESTIMATE_DRIFT: f64 = 2.0;

/// A wait longer than this is logged on [`WAIT`].
pub const LONG_WAIT: Duration = Duration::from_secs(1);

pub(crate) fn waited(
    family: &LimitFamily,
    tenant: Option<&Tenant>,
    wait: Duration,
    cost: Cost,
    in_use: Option<u64>,
    capacity: Option<u64>,
) {
    if wait <= LONG_WAIT {
        return;
    }
    let fill = match (in_use, capacity) {
        (Some(used), Some(capacity)) => {
            format!(", {} in use of {}", thousands(used), thousands(capacity))
        }
        _ => String::new(),
    };
    tracing::info!(
        target: WAIT,
        family = %family,
        tenant = tenant.map(Tenant::as_str),
        wait_ms = wait.as_millis() as u64,
        requested_tokens = cost.tokens(),
        in_use_tokens = in_use,
        capacity_tokens = capacity,
        "waited {:.1} s for {} tokens: {} requested{fill}",
        wait.as_secs_f64(),
        family.id,
        thousands(cost.tokens()),
    );
}

pub(crate) fn retrying(
    family: &LimitFamily,
    tenant: Option<&Tenant>,
    reason: &'static str,
    delay: Duration,
) {
    tracing::info!(
        target: RETRY,
        family = %family,
        tenant = tenant.map(Tenant::as_str),
        reason,
        delay_ms = delay.as_millis() as u64,
        "retrying a {} call after {reason} in {:.1} s",
        family.id,
        delay.as_secs_f64(),
    );
}

pub(crate) fn breaker(
    family: &LimitFamily,
    transition: Transition,
    failures: u32,
    cooldown: Duration,
) {
    let (from, to) = (transition.from, transition.to);
    if to == crate::family::breaker::BreakerState::Open {
        tracing::warn!(
            target: BREAKER,
            family = %family,
            %from,
            %to,
            failures,
            cooldown_ms = cooldown.as_millis() as u64,
            "circuit for {} opened after {failures} transient failures: calls fail at once for \
             {:.1} s",
            family.id,
            cooldown.as_secs_f64(),
        );
    } else {
        tracing::info!(target: BREAKER, family = %family, %from, %to, "circuit for {} {to}", family.id);
    }
}

pub(crate) fn refused(family: &LimitFamily, tenant: Option<&Tenant>, error: &Error) {
    if let Error::BudgetExhausted {
        budget,
        remaining,
        requested,
    } = error
    {
        tracing::warn!(
            target: BUDGET,
            family = %family,
            tenant = tenant.map(Tenant::as_str),
            budget = budget.as_str(),
            remaining = %remaining,
            requested = %requested,
            "{error}"
        );
    }
}

/// Says, once, that `family`'s prompt estimates are far from the input tokens its server
/// reports, with the likely cause and the fix. `estimated` and `reported` are sums over
/// `calls` answers. Returns whether it said anything (the drift is beyond
/// [`ESTIMATE_DRIFT`] either way).
pub(crate) fn estimate_drift(
    family: &LimitFamily,
    calls: u64,
    estimated: u64,
    reported: u64,
) -> bool {
    let ratio = estimated as f64 / reported.max(1) as f64;
    let (cause, fix) = if ratio >= ESTIMATE_DRIFT {
        (
            "an argument that is not prompt text (a URL, an id, a path) is probably counted as \
             prompt",
            "Leave it out with #[rate_limited(.., skip(name))], or set tokens = ..; the extra \
             reservation costs throughput, not correctness",
        )
    } else if ratio * ESTIMATE_DRIFT <= 1.0 {
        (
            "the prompt is not read from the arguments (a type the limiter cannot read counts \
             zero, and a warning at the first call names it; or the prompt is built inside the \
             function)",
            "Give it an EstimateTokens or AsRef<str> bound, or set tokens = ..: under-estimates \
             let bursts overrun the limit",
        )
    } else {
        return false;
    };
    tracing::warn!(
        target: ESTIMATE,
        family = %family,
        calls,
        estimated_input_tokens = estimated,
        reported_input_tokens = reported,
        "prompt estimates for {} run at {} % of the input tokens the server reports ({calls} \
         calls): {cause}. {fix}",
        family.id,
        (ratio * 100.0).round() as u64,
    );
    true
}
