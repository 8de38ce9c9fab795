//! Failures the mock injects instead of serving a request, and what each does to one request.

use std::time::Duration;

use tokio::time::Instant;

use super::openai_wire;
use crate::answers::http::HttpError;

#[cfg(doc)]
use super::{MockProvider, Rejection, RejectionKind};

/// A failure the mock injects instead of serving a request (see [`MockProvider::fault`](crate::testing::MockProvider::fault)).
///
/// Faults are checked in the order they were added, before the buckets; the first active one
/// answers the request. Fault responses never touch the buckets and are not admissions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Every request is answered 429 `rate_limit_exceeded` (type `requests`) until `until` has
    /// passed since the provider was created, with `retry-after-ms` set to the time left. Each
    /// one is recorded as a [`Rejection`] of kind [`RejectionKind::Storm`].
    RateLimitStorm {
        /// How long after creation the storm ends.
        until: Duration,
    },
    /// Every request is answered 429 `insufficient_quota` (out of credit), which must never be
    /// retried.
    InsufficientQuota,
    /// The next `times` requests are answered with HTTP `code` (500, 502, 503, 529, ...): an
    /// OpenAI `server_error` body, or Anthropic's `overloaded_error` for 529.
    Status {
        /// The HTTP status.
        code: u16,
        /// How many requests get it.
        times: u32,
    },
    /// The next `times` requests hang for `after`, then fail with HTTP 408 (`Request timed
    /// out.`), which classifies as transient.
    Timeout {
        /// How long the request hangs first.
        after: Duration,
        /// How many requests time out.
        times: u32,
    },
}

impl Fault {
    /// [`Fault::Status`]: the next `times` requests get HTTP `code`.
    pub const fn status(code: u16, times: u32) -> Self {
        Fault::Status { code, times }
    }

    /// [`Fault::Timeout`]: the next `times` requests hang for `after`, then get a 408.
    pub const fn timeout(after: Duration, times: u32) -> Self {
        Fault::Timeout { after, times }
    }

    /// What this fault does to a request arriving at `now` to a provider created at `created`,
    /// or `None` when it is no longer active. Counted faults use up one of their `times`.
    pub(super) fn strike(&mut self, now: Instant, created: Instant) -> Option<FaultStrike> {
        match self {
            Fault::RateLimitStorm { until } => {
                let left = match created.checked_add(*until) {
                    Some(end) if end > now => end - now,
                    Some(_) => return None,
                    // A storm too long to represent: an hour is as good as forever to a test.
                    None => Duration::from_secs(3600),
                };
                Some(FaultStrike::Storm { left })
            }
            Fault::InsufficientQuota => Some(FaultStrike::Failure {
                error: openai_wire::insufficient_quota(),
                delay: Duration::ZERO,
            }),
            Fault::Status { code, times } if *times > 0 => {
                *times -= 1;
                Some(FaultStrike::Failure {
                    error: openai_wire::server_error(*code),
                    delay: Duration::ZERO,
                })
            }
            Fault::Timeout { after, times } if *times > 0 => {
                *times -= 1;
                Some(FaultStrike::Failure {
                    error: openai_wire::timed_out(),
                    delay: *after,
                })
            }
            Fault::Status { .. } | Fault::Timeout { .. } => None,
        }
    }
}

/// What an active [`Fault`] does to one request.
pub(super) enum FaultStrike {
    /// A storm is on for `left` more: a rate-limit 429 the provider records as a rejection,
    /// with its own bucket headers.
    Storm {
        /// The time until the storm ends.
        left: Duration,
    },
    /// An injected failure, answered after `delay`; it touches no bucket.
    Failure {
        /// The answer.
        error: HttpError,
        /// How long the request hangs first.
        delay: Duration,
    },
}
