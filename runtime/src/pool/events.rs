//! The pool's `tracing` events, on the [`POOL`] target: each names its pool and, where one is
//! concerned, its deployment (the events of a deployment's family, on the other targets, name
//! it as their `family`).

use std::time::Duration;

use crate::family::events::{LONG_WAIT, POOL};
use crate::units::error::Error;
use crate::units::tenant::Tenant;

/// A call waited longer than [`LONG_WAIT`] in the pool before a deployment admitted it.
pub(crate) fn waited(
    pool: &str,
    deployment: &str,
    tenant: Option<&Tenant>,
    wait: Duration,
    tokens: u64,
) {
    if wait <= LONG_WAIT {
        return;
    }
    tracing::info!(
        target: POOL,
        pool,
        deployment,
        tenant = tenant.map(Tenant::as_str),
        wait_ms = wait.as_millis() as u64,
        requested_tokens = tokens,
        "waited {:.1} s in pool {pool} for {tokens} tokens, admitted on {deployment}",
        wait.as_secs_f64(),
    );
}

/// A deployment held for `duration` (a 429's retry-after): the pool routes around it.
pub(crate) fn held(pool: &str, deployment: &str, duration: Duration) {
    tracing::info!(
        target: POOL,
        pool,
        deployment,
        hold_ms = duration.as_millis() as u64,
        "deployment {deployment} of pool {pool} held for {:.1} s: routing around it",
        duration.as_secs_f64(),
    );
}

/// A deployment skipped for the pool's quota cool-down.
pub(crate) fn skipped(pool: &str, deployment: &str, cooldown: Duration, message: &str) {
    tracing::warn!(
        target: POOL,
        pool,
        deployment,
        cooldown_ms = cooldown.as_millis() as u64,
        message,
        "deployment {deployment} of pool {pool} out of quota: skipped for {:.1} s",
        cooldown.as_secs_f64(),
    );
}

/// A call the pool refused: no deployment could take it, or the pool's budget is spent.
pub(crate) fn refused(pool: &str, tenant: Option<&Tenant>, error: &Error) {
    tracing::warn!(
        target: POOL,
        pool,
        tenant = tenant.map(Tenant::as_str),
        error = %error,
        "{error}"
    );
}
