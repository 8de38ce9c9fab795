//! What a [`MockProvider`] keeps of what it answered: each admission, each rate-limit 429, and
//! counters over everything.

use std::time::Duration;

use tokio::time::Instant;

#[cfg(doc)]
use super::{Fault, MockProvider};

/// One admitted request: when, and how many tokens it counts against the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Admission {
    /// When it was admitted.
    pub at: Instant,
    /// Tokens it counts: the charge `prompt + n × max_tokens` (embeddings: the input tokens),
    /// or with [`MockProvider::refund_unused`], `prompt + completion`.
    pub tokens: u64,
}

impl Admission {
    /// An admission of `tokens` at `at` (one request).
    pub const fn new(at: Instant, tokens: u64) -> Self {
        Admission { at, tokens }
    }
}

/// Why a request was answered with a rate-limit 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The requests bucket was empty (`type: "requests"`).
    Requests,
    /// The tokens bucket could not take the charge now (`type: "tokens"`).
    Tokens,
    /// The charge exceeds the TPM limit itself, so it could never be admitted: OpenAI's
    /// "Request too large" 429, sent without a retry-after.
    ChargeAboveTpm,
    /// A [`Fault::RateLimitStorm`] was in progress.
    Storm,
}

/// One rate-limit 429 the mock answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejection {
    /// When.
    pub at: Instant,
    /// The tokens the request would have been charged.
    pub tokens: u64,
    /// Why.
    pub kind: RejectionKind,
    /// The `retry-after-ms` sent, rounded up to the millisecond (`None` for
    /// [`RejectionKind::ChargeAboveTpm`]).
    pub retry_after: Option<Duration>,
}

/// Counters over everything a [`MockProvider`](crate::testing::MockProvider) answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockStats {
    /// Requests that reached the enforcement core (well-formed ones).
    pub calls: u64,
    /// Requests admitted and answered successfully.
    pub admitted: u64,
    /// Rate-limit 429s: over the limit, a charge above TPM, or a storm (see [`MockProvider::rejections`]).
    pub rate_limited: u64,
    /// Injected faults answered: `insufficient_quota`, status codes, timeouts.
    pub faults: u64,
    /// Tokens charged by the admitted requests.
    pub admitted_tokens: u64,
    /// Prompt tokens of the admitted requests.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the admitted requests.
    pub completion_tokens: u64,
    /// Time since the provider was created.
    pub elapsed: Duration,
}
