//! The `tracing` targets of long runs, so a subscriber can pick them out
//! (`RUST_LOG=ratelimited::wait=info,ratelimited::breaker=warn`). Fields are listed in the
//! README's "Long runs" section.

use std::time::Duration;

use crate::family::breaker::Transition;
use crate::model::limit_family::LimitFamily;
use crate::units::cost::Cost;
use crate::units::error::Error;
use crate::units::money::thousands;

/// Waits longer than [`LONG_WAIT`], at info.
pub const WAIT: &str = "ratelimited::wait";
/// Each retry, with its reason and delay, at info.
pub const RETRY: &str = "ratelimited::retry";
/// Breaker transitions: opening at warn, half-open and closing at info.
pub const BREAKER: &str = "ratelimited::breaker";
/// Calls refused by a budget, at warn.
pub const BUDGET: &str = "ratelimited::budget";

/// A wait longer than this is logged on [`WAIT`].
pub const LONG_WAIT: Duration = Duration::from_secs(1);

pub(crate) fn waited(
    family: &LimitFamily,
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

pub(crate) fn retrying(family: &LimitFamily, reason: &'static str, delay: Duration) {
    tracing::info!(
        target: RETRY,
        family = %family,
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

pub(crate) fn refused(family: &LimitFamily, error: &Error) {
    if let Error::BudgetExhausted {
        budget,
        remaining,
        requested,
    } = error
    {
        tracing::warn!(
            target: BUDGET,
            family = %family,
            budget = budget.as_str(),
            remaining = %remaining,
            requested = %requested,
            "{error}"
        );
    }
}
