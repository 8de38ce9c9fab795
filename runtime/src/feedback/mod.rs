//! What a family learns from its server's answers: the opening burst before the first one,
//! the correction of the prompt estimate, and the server's own limits and accounting from the
//! rate-limit headers.
//!
//! One [`FamilyFeedback`] per limiter, shared by every call of the family. With the Redis
//! backend the limits adopted here reach the other processes through `Limiter::set_quota` and
//! the tightening through the shared buckets; the correction and the opening burst stay per
//! process (each process verifies its own estimates).

mod correction;
mod opening;

use std::sync::Mutex;

use tokio::time::Instant;

pub use correction::{ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION};
pub use opening::{OPENING_BURST_FRACTION, OPENING_MAX_WAIT};

use crate::family::LimitFamily;
use crate::http::RateLimitHeaders;
use crate::limiter::Limiter;
use crate::quota::{Cost, Dimension};
use opening::OpeningBurst;

/// What one family has learned from its server so far.
#[derive(Debug)]
pub(crate) struct FamilyFeedback {
    family: LimitFamily,
    learn_limits: bool,
    opening: OpeningBurst,
    correction: Mutex<ChargeCorrection>,
}

impl FamilyFeedback {
    pub(crate) fn new(family: LimitFamily, limiter: &Limiter, learn_limits: bool) -> Self {
        FamilyFeedback {
            family,
            learn_limits,
            opening: OpeningBurst::new(&limiter.quota()),
            correction: Mutex::new(ChargeCorrection::default()),
        }
    }

    /// Waits while the family is in its opening burst and `cost` does not fit what is left
    /// of it.
    pub(crate) async fn admit_opening(&self, cost: &Cost) {
        self.opening.admit(cost).await;
    }

    /// The server has answered: the opening burst is over.
    pub(crate) fn server_answered(&self) {
        self.opening.open();
    }

    /// `input_tokens` raised by the learned correction.
    pub(crate) fn corrected_input(&self, input_tokens: u64) -> u64 {
        self.correction().apply(input_tokens, Instant::now())
    }

    fn correction(&self) -> std::sync::MutexGuard<'_, ChargeCorrection> {
        self.correction
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Brings the limiter to what the server reports in a response's headers.
    ///
    /// - A reported limit below the configured one is adopted: the tier overstates the
    ///   account, and keeping it would draw 429s. One above it is adopted only with learned
    ///   limits on (`RATE_LIMITED_LEARN_LIMITS`); otherwise it is ignored. Each change is
    ///   logged once, at info.
    /// - The units the server counts in use tighten the local bucket (never loosen it). The
    ///   server counted them at some moment between sending and answering; nothing is taken
    ///   off for what it refilled since. Taking off the whole flight's refill reached 1.002x
    ///   of the minimum in the real-time benchmark but drew 3 429s of 300 at headroom 1.0;
    ///   without it the local state trails the server by at most one request latency (1.025x)
    ///   and draws none.
    /// - On tokens, a server count above the local one feeds the [`ChargeCorrection`].
    pub(crate) fn apply_headers(&self, limiter: &Limiter, headers: &RateLimitHeaders) {
        let reports = [
            (
                headers.limit_requests,
                headers.remaining_requests,
                &[Dimension::RequestsPerMinute, Dimension::RequestsPerDay][..],
            ),
            (
                headers.limit_tokens,
                headers.remaining_tokens,
                &[Dimension::TokensPerMinute, Dimension::TokensPerDay][..],
            ),
            (
                headers.limit_input_tokens,
                headers.remaining_input_tokens,
                &[Dimension::InputTokensPerMinute][..],
            ),
            (
                headers.limit_output_tokens,
                headers.remaining_output_tokens,
                &[Dimension::OutputTokensPerMinute][..],
            ),
        ];
        for (limit, remaining, dimensions) in reports {
            let (Some(limit), Some(remaining)) = (limit, remaining) else {
                continue;
            };
            if limit == 0 {
                continue;
            }
            let quota = limiter.quota();
            let dimension = match dimensions.iter().find(|d| quota.limit(**d) == Some(limit)) {
                Some(dimension) => *dimension,
                None => match self.adopt_limit(limiter, dimensions[0], limit) {
                    Some(dimension) => dimension,
                    None => continue,
                },
            };
            let used = limit.saturating_sub(remaining);
            if matches!(
                dimension,
                Dimension::TokensPerMinute | Dimension::InputTokensPerMinute
            ) {
                if let Some(local) = limiter.in_use(dimension) {
                    self.correction().observe(local, used, Instant::now());
                }
            }
            limiter.tighten(dimension, used);
        }
    }

    /// Sets `dimension` to the server's `limit` when that is allowed (lower, or learning);
    /// returns the dimension if it now matches.
    fn adopt_limit(
        &self,
        limiter: &Limiter,
        dimension: Dimension,
        limit: u64,
    ) -> Option<Dimension> {
        let mut quota = limiter.quota();
        let configured = quota.limit(dimension);
        let lower = configured.is_some_and(|c| limit < c);
        if !(lower || self.learn_limits) {
            tracing::debug!(
                family = %self.family,
                %dimension,
                limit,
                ?configured,
                "the server reports a higher limit than configured; ignored (set \
                 RATE_LIMITED_LEARN_LIMITS=1 to adopt it)"
            );
            return None;
        }
        quota.set_limit(dimension, Some(limit));
        tracing::info!(
            family = %self.family,
            %dimension,
            limit,
            ?configured,
            "adopting the limit the server reports"
        );
        limiter.set_quota(quota);
        Some(dimension)
    }
}
