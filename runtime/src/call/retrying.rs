//! The retry state of one call, shared by a call on one family ([`Call`](super::Call)) and one
//! on a deployment pool ([`PoolCall`](super::pool::PoolCall)): the retry budget and the
//! server-wait maximum, the clock and the backoff, and the attempts so far. What the policy
//! makes of a failure is [`retry::next_action`]; what each call then holds (its family, or one
//! deployment) stays with the call.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::answers::classify::{Classify, Verdict};
use crate::answers::retry::{self, Action, Backoff, RetryLimits, MAX_RETRY_TIME};
use crate::config::Settings;
use crate::units::error::{Error, LastError};

/// Where one call stands against its retry limits.
pub(crate) struct Retrying {
    limits: RetryLimits,
    started: Instant,
    backoff: Backoff,
    /// How many times the body has run.
    attempts: u32,
    /// Attempts that spend no retry: a pool call that moved off an out-of-quota deployment.
    free: u32,
}

impl Retrying {
    /// A call starting now, with `retries` (the attribute's `retries = ..`) over the
    /// settings' `RATE_LIMITED_MAX_RETRIES`.
    pub(crate) fn new(settings: &Settings, retries: Option<u32>) -> Self {
        Retrying {
            limits: RetryLimits {
                max_retries: retries.unwrap_or(settings.max_retries),
                max_retry_after: settings.max_retry_after,
                max_total: MAX_RETRY_TIME,
            },
            started: Instant::now(),
            backoff: Backoff::default(),
            attempts: 0,
            free: 0,
        }
    }

    /// How many times the body has run.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// An attempt was admitted: the body runs once more.
    pub(crate) fn attempt_started(&mut self) {
        self.attempts += 1;
    }

    /// The last attempt spends no retry (it moved off a deployment that can never succeed).
    pub(crate) fn spend_no_retry(&mut self) {
        self.free += 1;
    }

    /// What follows a failed attempt with `verdict`, counting the attempts that spent a retry.
    pub(crate) fn next_action(&mut self, verdict: &Verdict) -> Action {
        let Retrying {
            limits,
            started,
            backoff,
            attempts,
            free,
        } = self;
        retry::next_action(
            verdict,
            *attempts - *free,
            started.elapsed(),
            *limits,
            || backoff.next_wait(),
        )
    }

    /// The error of a spent budget, with `error` as the last one.
    pub(crate) fn exhausted<E: Classify + fmt::Debug>(&self, error: &E) -> Error {
        Error::RetriesExhausted {
            attempts: self.attempts,
            last_error: LastError::from_error(error),
        }
    }
}

/// The error of a server wait over the maximum.
pub(crate) fn too_long(asked: Duration, max: Duration) -> Error {
    Error::RetryAfterTooLong {
        retry_after: asked,
        max,
    }
}
