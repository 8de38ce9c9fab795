//! One admitted attempt: the reservation on the family's limiter and the family's in-flight
//! guard, held while the request runs, or, for a streamed response, until the stream ends.
//! However it ends, the limiter, the stats, the budgets and the breaker hear the same story.

use std::fmt;
use std::sync::Arc;

use crate::answers::classify::Verdict;
use crate::answers::retry::Action;
use crate::config::ModelProfile;
use crate::family::state::InFlight;
use crate::limiter::gcra::Mark;
use crate::limiter::{Reservation, SharedMark};
use crate::pool::Pool;
use crate::units::cost::{Cost, Usage};

/// An admitted attempt: holds the reservation while the body runs.
#[must_use = "pass the attempt to `Call::finish`"]
pub struct Attempt {
    reservation: Reservation,
    in_flight: InFlight,
    profile: Arc<ModelProfile>,
    /// The prompt estimate a provider that charges by characters took on arrival.
    charged_prompt: Option<u64>,
    /// The pool this attempt was routed in, told when the attempt ends, however it ends (last,
    /// so it hears after the reservation and the slot are released).
    ended: Option<PoolChanged>,
}

/// Tells a pool, when dropped, that one of its reservations ended: its waiting head may now
/// route to that deployment.
struct PoolChanged(Pool);

impl Drop for PoolChanged {
    fn drop(&mut self) {
        self.0.changed();
    }
}

impl Attempt {
    pub(crate) fn new(
        reservation: Reservation,
        in_flight: InFlight,
        profile: Arc<ModelProfile>,
        charged_prompt: Option<u64>,
    ) -> Self {
        Attempt {
            reservation,
            in_flight,
            profile,
            charged_prompt,
            ended: None,
        }
    }

    /// Tells `pool` when this attempt ends: for an attempt that outlives the call's own
    /// settle (a stream), so the pool's waiting head re-routes when it frees its deployment.
    pub(crate) fn telling_on_end(mut self, pool: Pool) -> Self {
        self.ended = Some(PoolChanged(pool));
        self
    }

    /// What the attempt reserved.
    pub(crate) fn reserved(&self) -> Cost {
        self.reservation.cost()
    }

    /// The family this attempt's model belongs to, for logs.
    pub(crate) fn profile(&self) -> &ModelProfile {
        &self.profile
    }

    /// A successful answer that reported `reported` (or no usage): the reservation settles to
    /// what the provider charges for it (or keeps the estimate), and the family's stats,
    /// budgets and breaker record it. Returns where the buckets stood after the charge (the
    /// local ones, or the shared store's), adjusted for the settle, to read the answer's
    /// rate-limit headers against.
    pub(crate) fn succeeded(self, reported: Option<Usage>) -> (Option<Mark>, Option<SharedMark>) {
        let reserved = self.reservation.cost();
        let mut mark = self.reservation.mark();
        let mut shared = self.reservation.shared_mark().cloned();
        let charged = reported.map(|usage| {
            self.profile
                .charged_usage(self.charged_prompt, reserved, usage)
        });
        match charged {
            Some(usage) => {
                self.reservation.settle(usage);
                let settled = reserved.settled(usage);
                mark = mark.map(|mark| mark.settled(&reserved, &settled));
                shared = shared.map(|mark| mark.settled(&reserved, &settled));
            }
            None => self.reservation.keep(),
        }
        self.in_flight.succeeded(reserved, charged, reported);
        (mark, shared)
    }

    /// A failed answer and what the retry policy made of it. A 429 was rejected before any
    /// token was taken, so its tokens go back (the request still counts, as OpenAI counts it);
    /// any other failure keeps the charge (the server may have counted it).
    pub(crate) fn failed(self, verdict: &Verdict, action: &Action) {
        if matches!(verdict, Verdict::RateLimited { .. }) {
            self.reservation.settle(Usage::default());
        } else {
            self.reservation.keep();
        }
        self.in_flight.failed(verdict, action);
    }

    /// Where the buckets stood just after this attempt's charge (the local ones, or the
    /// shared store's): what a streamed answer's headers are read against when it starts.
    pub(crate) fn marks(&self) -> (Option<Mark>, Option<SharedMark>) {
        (
            self.reservation.mark(),
            self.reservation.shared_mark().cloned(),
        )
    }

    /// The server answered with a stream: the breaker hears of the answer now; the
    /// reservation, the in-flight count and the budgets' hold stay until the stream ends.
    pub(crate) fn streaming(mut self) -> Self {
        self.in_flight.answered();
        self
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("reservation", &self.reservation)
            .finish()
    }
}
