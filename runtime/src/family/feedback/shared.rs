//! Learning as a fleet (feature `redis`): the limits a process adopts from its server's
//! headers and its raised charge correction go to Redis, and every process of the family reads
//! them back at most once per [`SHARED_REFRESH`], off the request path.
//!
//! Each process still verifies its own estimates; what is shared only ever makes the others
//! more careful (a lower limit, a larger correction), or, with learned limits on in the
//! reading process too, adopts the account's real tier.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::FamilyFeedback;
use crate::limiter::{Limiter, SharedMark};
use crate::store::{spawn_detached, Learned};
use crate::sync::Locked;
use crate::units::cost::Dimension;
use crate::units::quota::Window;

// A shared correction outlives its excess: Redis keeps it ten half-lives.
const _: () =
    assert!(crate::store::CORRECTION_TTL.as_secs() == 10 * super::CORRECTION_HALF_LIFE.as_secs());

/// How often a process reads what the family's other processes learned.
pub(crate) const SHARED_REFRESH: Duration = Duration::from_secs(1);

impl FamilyFeedback {
    /// Shares a limit adopted from the server, when the family lives in Redis.
    pub(super) fn share_limit(&self, dimension: Dimension, limit: u64) {
        if let Some(store) = self.store.as_ref() {
            store.share_limit(dimension, limit);
        }
    }

    /// Shares the correction factor in force, when the family lives in Redis.
    pub(super) fn share_correction(&self) {
        if let Some(store) = self.store.as_ref() {
            let factor = self.correction().factor(Instant::now());
            store.share_correction(factor);
        }
    }

    /// Raises the family's buckets in Redis (and its fallback) to what the server counts in
    /// use, read against the request's `mark` (as of the answer without one; counted no later
    /// than `processing` before the answer, when the server says), and (with
    /// `judge`) feeds the correction from what Redis held at the mark plus what it charged
    /// since, in the background. False when the family does not live in Redis.
    pub(super) fn reconcile_shared(
        self: &Arc<Self>,
        limiter: &Limiter,
        dimension: Dimension,
        used: u64,
        judge: bool,
        mark: Option<&SharedMark>,
        processing: Option<Duration>,
    ) -> bool {
        let Some(store) = self.store.as_ref() else {
            return false;
        };
        let at = mark.and_then(|mark| Some((mark.start_us, mark.level(dimension)?)));
        let before = store.tighten_reporting(&limiter.quota(), dimension, used, at, processing);
        let feedback = Arc::clone(self);
        spawn_detached(async move {
            let Some((held, since)) = before.await else {
                return;
            };
            let counted = held.saturating_add(since);
            if judge && feedback.correction().observe(counted, used, Instant::now()) {
                feedback.share_correction();
            }
        });
        true
    }

    /// Reads what the family's other processes shared, in the background, if the family lives
    /// in Redis and the last read is [`SHARED_REFRESH`] old.
    pub(crate) fn refresh_shared(self: &Arc<Self>, limiter: &Limiter) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let now = Instant::now();
        {
            let mut next = self.next_refresh.locked();
            if next.is_some_and(|at| now < at) {
                return;
            }
            *next = Some(now + SHARED_REFRESH);
        }
        let (feedback, limiter, store) = (Arc::clone(self), limiter.clone(), store.clone());
        spawn_detached(async move {
            if let Some(learned) = store.learned().await {
                feedback.apply_learned(&limiter, &learned);
            }
        });
    }

    /// Adopts what the family's other processes shared: their limits (one up to the
    /// configured limit always, a higher one only with learned limits on, as from a server)
    /// and their correction, aged by the time since they shared it.
    pub(crate) fn apply_learned(&self, limiter: &Limiter, learned: &Learned) {
        for &(dimension, limit) in &learned.limits {
            if limiter.quota().limit(dimension).is_some_and(|l| l != limit) {
                self.set_limit(
                    limiter,
                    dimension,
                    limit,
                    "another process of the family shares",
                );
            }
        }
        if learned.window.is_some() && limiter.quota().window == Window::Continuous {
            self.follow_window(
                limiter,
                Dimension::RequestsPerMinute,
                "another process of the family saw it",
            );
        }
        if let Some((factor, age)) = learned.correction {
            let now = Instant::now();
            let observed_at = now.checked_sub(age).unwrap_or(now);
            self.correction().adopt(factor, observed_at);
        }
    }
}
