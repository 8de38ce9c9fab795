//! What the answers tell of how the server counts over time: per window rather than with a
//! refill, and where a fixed window's boundaries are.
//!
//! Three kinds of evidence, each one a refilling bucket cannot produce:
//! - **Resets** that count down to one boundary while the counts fall (`learn_window` in the
//!   parent module).
//! - **`remaining` jumping back** between two answers by more than a refill could have given
//!   in the time between them (a gateway that sends no reset header: LiteLLM's answers carry
//!   `x-ratelimit-remaining-requests` and `x-ratelimit-limit-requests` only). Only answers
//!   that report the same limit (a server may alternate between two) and are ordered on the
//!   wire are compared: the earlier one answered before the later one was
//!   sent, so the server counted the earlier first.
//! - **A 429 that asks to wait longer** than a refilling bucket would make the refused
//!   request wait at the limits in force (its cost over each dimension's rate, plus a second
//!   for a hint in whole seconds), and at most a minute: a window that has no room left
//!   until its boundary.
//!
//! Any of them makes a family whose limits refill continuously be followed as a window
//! ([`Window::Sliding`]: at most the limit in any minute, which is safe whatever the server's
//! boundary; a sliding window cannot be told from a fixed one by these alone). A family set
//! to [`Window::Fixed`] takes from the same evidence where the server's windows start: a
//! reset or a retry-after names the boundary from the request's arrival, somewhere between
//! its sending and its answer; a jump puts it between the earlier request's sending and the
//! later one's answer. The limiter aligns on the latest moment the boundary can be, and
//! counts what was sent within the uncertainty plus the longest recent round trip before a
//! boundary in both windows. The server's `Date` header is not used: it names the server's
//! second, not where its windows start (a gateway may count from its first request).

use std::time::Duration;

use tokio::time::Instant;

use super::counts::{refill, rounding, Seen, COUNTS_KEPT, MINUTE, WHOLE_SECOND};
use super::FamilyFeedback;
use crate::limiter::Limiter;
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::Window;

impl FamilyFeedback {
    /// Reads one answer's count on `dimension` (`limit`, `remaining`, `reset` as reported)
    /// for a request sent at `sent`: a jump back proves a window, and a family set to
    /// [`Window::Fixed`] aligns on the boundary a jump or a reset shows.
    pub(super) fn watch_counts(
        &self,
        limiter: &Limiter,
        dimension: Dimension,
        (limit, remaining): (u64, u64),
        reset: Option<Duration>,
        sent: Instant,
    ) {
        let Some(window) = dimension.window().filter(|w| *w == MINUTE) else {
            return;
        };
        let now = Instant::now();
        let slack = (limit / 50).max(2);
        let jumped_since = {
            let mut witness = self.window_witness.locked();
            witness.round_trip(now.saturating_duration_since(sent));
            let jumped = witness
                .seen
                .iter()
                .filter(|s| s.dimension == dimension && s.limit == limit && s.answered <= sent)
                .filter(|s| {
                    let could = refill(limit, now.saturating_duration_since(s.sent), window);
                    remaining > s.remaining.saturating_add(could).saturating_add(slack)
                })
                .map(|s| s.sent)
                .min();
            if witness.seen.len() == COUNTS_KEPT {
                witness.seen.pop_front();
            }
            witness.seen.push_back(Seen {
                dimension,
                sent,
                answered: now,
                remaining,
                limit,
            });
            jumped
        };
        let fixed = limiter.quota().window == Window::Fixed;
        if let Some(earlier) = jumped_since {
            self.follow_window(
                limiter,
                dimension,
                "its `remaining` jumped back more than a refill could",
            );
            if fixed {
                self.align(limiter, earlier, now);
            }
        } else if let (Some(reset), true) = (reset, fixed) {
            let slack = rounding(reset);
            self.align(
                limiter,
                (sent + reset).checked_sub(slack).unwrap_or(sent),
                now + reset + slack,
            );
        }
    }

    /// A 429 asked to wait `wait` for a request that reserved `cost` and was sent at `sent`:
    /// longer than a refilling bucket would make it wait (and at most a minute) proves a
    /// window; a family set to [`Window::Fixed`] aligns on the boundary it names.
    pub(crate) fn refused(
        &self,
        limiter: &Limiter,
        cost: &Cost,
        sent: Option<Instant>,
        wait: Duration,
    ) {
        if wait > MINUTE + WHOLE_SECOND {
            return;
        }
        let now = Instant::now();
        let quota = limiter.quota();
        // The longest a refilling bucket at the limits in force makes this request wait.
        let bucket_wait = Dimension::ALL
            .iter()
            .filter_map(|d| {
                let (limit, window) = (quota.limit(*d)?, d.window()?);
                let units = d.charge(cost);
                Some(window.mul_f64(units as f64 / limit.max(1) as f64))
            })
            .max()
            .unwrap_or_default();
        if wait > bucket_wait + WHOLE_SECOND {
            let dimension = Dimension::RequestsPerMinute;
            self.follow_window(
                limiter,
                dimension,
                "a 429 asked to wait longer than a refill would",
            );
        }
        if let (Some(sent), Window::Fixed) = (sent, quota.window) {
            let slack = rounding(wait);
            self.align(
                limiter,
                (sent + wait).checked_sub(slack).unwrap_or(sent),
                now + wait + slack,
            );
        }
    }

    /// The server's windows start somewhere in `[earliest, latest]` (and every minute
    /// around): aligns the limiter on `latest`, with that span plus the longest recent round
    /// trip as the guard, unless a narrower one was seen. Logged at info the first time.
    fn align(&self, limiter: &Limiter, earliest: Instant, latest: Instant) {
        // Through Redis the fleet keeps its window logs over any window: where one process saw
        // the boundary is not shared.
        #[cfg(feature = "redis")]
        if self.store.is_some() {
            return;
        }
        let guard = {
            let mut witness = self.window_witness.locked();
            let guard = latest.saturating_duration_since(earliest) + witness.longest_round_trip();
            // Known no closer than half a window, the boundary is no use: any window it is.
            if guard > MINUTE / 2 || witness.aligned.is_some_and(|best| guard > best) {
                return;
            }
            let first = witness.aligned.is_none();
            witness.aligned = Some(guard);
            if first {
                tracing::info!(
                    family = %self.family,
                    boundary_in = ?latest.saturating_duration_since(Instant::now()),
                    ?guard,
                    "the server's fixed windows start every minute from this boundary: the \
                     whole limit in each of them from now on"
                );
            }
            guard
        };
        limiter.align_windows(latest, guard);
    }

    /// Follows a family whose limits refill continuously as a window from now on, since its
    /// server counts per window (`evidence` says how that showed on `dimension`), logged once
    /// at info. Not when `RATE_LIMITED_<FAMILY>_WINDOW` is set. A family shared through Redis
    /// tells its other processes, which follow it too.
    pub(crate) fn follow_window(&self, limiter: &Limiter, dimension: Dimension, evidence: &str) {
        let mut quota = limiter.quota();
        if quota.window != Window::Continuous || !self.learn_window {
            return;
        }
        #[cfg(feature = "redis")]
        if let Some(store) = self.store.as_ref() {
            store.share_window();
        }
        tracing::info!(
            family = %self.family,
            %dimension,
            "the server counts per window ({evidence}): at most the limit in any minute from \
             now on (RATE_LIMITED_<FAMILY>_WINDOW sets it)"
        );
        quota.window = Window::Sliding;
        limiter.set_quota(quota);
    }
}
