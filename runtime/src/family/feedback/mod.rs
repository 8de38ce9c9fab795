//! What a family learns from its server's answers: the opening burst before the first one,
//! the correction of the prompt estimate, and the server's own limits and accounting from the
//! rate-limit headers.
//!
//! One [`FamilyFeedback`] per limiter, shared by every call of the family. With the Redis
//! backend the tightening goes to the shared buckets, and the limits adopted here and the
//! raised correction reach the family's other processes through Redis (`shared.rs`); the
//! opening burst stays per process (each process verifies its own estimates).

mod correction;
mod opening;
#[cfg(feature = "redis")]
mod shared;

use std::sync::Mutex;

use tokio::time::Instant;

pub use correction::{ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION};
pub use opening::{OPENING_BURST_FRACTION, OPENING_MAX_WAIT};

use crate::answers::http::RateLimitHeaders;
use crate::limiter::gcra::Mark;
use crate::limiter::Limiter;
use crate::model::limit_family::LimitFamily;
use crate::store::Backed;
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use opening::OpeningBurst;

/// What one family has learned from its server so far.
#[derive(Debug)]
pub(crate) struct FamilyFeedback {
    family: LimitFamily,
    learn_limits: bool,
    opening: OpeningBurst,
    correction: Mutex<ChargeCorrection>,
    /// The family's state in Redis, when it is shared.
    #[cfg(feature = "redis")]
    store: Option<crate::store::SharedFamily>,
    /// When this process next reads what the family's other processes shared (`None`: now).
    #[cfg(feature = "redis")]
    next_refresh: Mutex<Option<Instant>>,
}

impl FamilyFeedback {
    pub(crate) fn new(family: LimitFamily, backed: &Backed, learn_limits: bool) -> Self {
        FamilyFeedback {
            family,
            learn_limits,
            opening: OpeningBurst::new(&backed.limiter.quota()),
            correction: Mutex::new(ChargeCorrection::default()),
            #[cfg(feature = "redis")]
            store: backed.shared.clone(),
            #[cfg(feature = "redis")]
            next_refresh: Mutex::new(None),
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

    /// The correction factor in force now.
    pub(crate) fn correction_factor(&self) -> f64 {
        self.correction().factor(Instant::now())
    }

    /// `input_tokens` raised by the learned correction.
    pub(crate) fn corrected_input(&self, input_tokens: u64) -> u64 {
        self.correction().apply(input_tokens, Instant::now())
    }

    fn correction(&self) -> std::sync::MutexGuard<'_, ChargeCorrection> {
        self.correction.locked()
    }

    /// Brings the limiter to what the server reports in a response's headers; `mark` is where
    /// the limiter stood just after the request's reservation was charged (and settled).
    ///
    /// - A reported limit below the configured one is adopted: the tier overstates the
    ///   account, and keeping it would draw 429s. One above it is adopted only with learned
    ///   limits on (`RATE_LIMITED_LEARN_LIMITS`); otherwise it is ignored. Each change is
    ///   logged once, at info.
    /// - The units the server counts in use move the local level to what they imply now: the
    ///   server counted them when the request arrived, so the count is read against the mark,
    ///   refilled since, plus what was charged after it, and the level moves once three
    ///   reports agree (see `Buckets::reconcile`). When the server says how long it spent on
    ///   the request (`openai-processing-ms`), the rest of the round trip bounds when it
    ///   counted: the level follows the server to within the answer's way back (1.002x of the
    ///   minimum in the real-time benchmark, 0 429s). Without it, the count may be as old as
    ///   the whole round trip and is read as the level when the answer arrives: the limiter
    ///   then trails the server by one request latency (1.02x), never runs ahead of it.
    /// - On tokens, a server count above the local one feeds the [`ChargeCorrection`].
    /// - A family whose buckets live in Redis raises them to the count as of the answer (they
    ///   keep no marks), and its correction compares the count with what Redis held.
    pub(crate) fn apply_headers(
        self: &std::sync::Arc<Self>,
        limiter: &Limiter,
        headers: &RateLimitHeaders,
        mark: Option<&Mark>,
    ) {
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
            let (dimension, adopted) =
                match dimensions.iter().find(|d| quota.limit(**d) == Some(limit)) {
                    Some(dimension) => (*dimension, false),
                    None => match self.adopt_limit(limiter, dimensions[0], limit) {
                        Some(dimension) => (dimension, true),
                        None => continue,
                    },
                };
            let used = limit.saturating_sub(remaining);
            // The estimate is judged against the charge only on tokens, and not on the answer
            // that changed the limit: the buckets' scale changed with it.
            let judge = !adopted
                && matches!(
                    dimension,
                    Dimension::TokensPerMinute | Dimension::InputTokensPerMinute
                );
            if self.reconcile_shared(limiter, dimension, used, judge) {
                continue;
            }
            let reconciled = limiter.reconcile(dimension, used, mark, headers.processing);
            if let (Some((local, implied)), true) = (reconciled, judge) {
                if self.correction().observe(local, implied, Instant::now()) {
                    self.share_correction();
                }
            }
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
        let adopted = self.set_limit(limiter, dimension, limit, "the server reports")?;
        self.share_limit(dimension, limit);
        Some(adopted)
    }

    /// Sets `dimension` to `limit` (reported by `source`) when that is allowed: lower than
    /// configured, or learning.
    fn set_limit(
        &self,
        limiter: &Limiter,
        dimension: Dimension,
        limit: u64,
        source: &str,
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
                "{source} a higher limit than configured; ignored (set \
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
            "adopting the limit {source}"
        );
        limiter.set_quota(quota);
        Some(dimension)
    }

    /// Without a shared store there is nothing to share.
    #[cfg(not(feature = "redis"))]
    fn share_limit(&self, _dimension: Dimension, _limit: u64) {}

    #[cfg(not(feature = "redis"))]
    fn share_correction(&self) {}

    #[cfg(not(feature = "redis"))]
    fn reconcile_shared(
        self: &std::sync::Arc<Self>,
        _limiter: &Limiter,
        _dimension: Dimension,
        _used: u64,
        _judge: bool,
    ) -> bool {
        false
    }

    #[cfg(not(feature = "redis"))]
    pub(crate) fn refresh_shared(self: &std::sync::Arc<Self>, _limiter: &Limiter) {}
}
