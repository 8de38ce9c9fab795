//! A reservation held while its request runs: settled, kept or refunded when it ends.

use std::fmt;
use std::sync::Arc;

use super::gcra::Mark;
use super::state::{wake, Shared};
use crate::units::cost::{Cost, Dimension, Usage};
use crate::units::quota::Quota;
use crate::units::tenant::Tenant;

/// What a reservation charged on a [`SharedStore`](super::SharedStore) must give back there:
/// implemented by the store.
pub trait SharedHold: Send + Sync {
    /// When the reservation starts on the store's clock (`None` when the store admitted it
    /// on its local fallback).
    fn start(&self) -> Option<std::time::SystemTime>;
    /// Settles the charge from `from` to `to` (a refund, a debit, or nothing) and frees its
    /// concurrency slots. `quota` is the limits in force now; a store that remembers the limits
    /// the charge was made under (the Redis store does) settles under those instead.
    fn release(self: Box<Self>, quota: &Quota, from: &Cost, to: &Cost);
}

/// Where a shared store's buckets stood just after a reservation was charged there: its start
/// on the store's clock (µs since the Unix epoch) and the units in use on each bucket then, its
/// own charge included. The server's count in the answer is read against it (see the Redis
/// store's `tighten`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedMark {
    pub(crate) start_us: u64,
    pub(crate) levels: Vec<(Dimension, u64)>,
    /// The same start on this process's clock: when the request could be sent at the earliest
    /// (the answers' order on the wire is read on it).
    pub(crate) starts_at: tokio::time::Instant,
}

impl SharedMark {
    /// The mark as if the reservation had charged `to` instead of `from` (its settle is part
    /// of what the server counted).
    pub(crate) fn settled(mut self, from: &Cost, to: &Cost) -> SharedMark {
        for (dimension, level) in &mut self.levels {
            *level = (*level + dimension.charge(to)).saturating_sub(dimension.charge(from));
        }
        self
    }

    /// The units in use on `dimension` at the mark.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn level(&self, dimension: Dimension) -> Option<u64> {
        self.levels
            .iter()
            .find(|(d, _)| *d == dimension)
            .map(|&(_, level)| level)
    }
}

/// A cost reserved on every dimension of a [`Limiter`](crate::Limiter), held while the request
/// runs.
///
/// - [`settle`](Reservation::settle) with the real usage refunds what was over-reserved or
///   debits what was under-reserved.
/// - Dropped before [`mark_sent`](Reservation::mark_sent) (the request never left), it refunds
///   everything.
/// - Dropped after `mark_sent` without a settle (usage unknown), it keeps the estimate.
/// - Its in-flight slot is released in every case.
#[must_use = "dropping a reservation at once refunds it"]
pub struct Reservation {
    shared: Arc<Shared>,
    cost: Cost,
    /// Where the local buckets stood just after the charge (`None` through a shared store).
    mark: Option<Mark>,
    sent: bool,
    released: bool,
    /// Taken on a shared store: released there, not in the local state.
    held: Option<Box<dyn SharedHold>>,
    /// Where the shared store's buckets stood just after the charge, when it says.
    shared_mark: Option<SharedMark>,
    /// Who the call is for.
    tenant: Option<Tenant>,
    /// Whether the tenant's cap was charged too (its release gives it back there).
    tenant_charged: bool,
}

impl Reservation {
    #[inline]
    pub(super) fn new(shared: Arc<Shared>, cost: Cost, mark: Option<Mark>) -> Self {
        Reservation {
            shared,
            cost,
            mark,
            sent: false,
            released: false,
            held: None,
            shared_mark: None,
            tenant: None,
            tenant_charged: false,
        }
    }

    /// The reservation as made for `tenant`, its cap charged too when `charged`.
    #[inline]
    /// The reservation as made for `tenant`, charged on a shared store (its cap there).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn with_tenant(self, tenant: Option<Tenant>) -> Self {
        self.for_tenant(tenant, false)
    }

    pub(super) fn for_tenant(mut self, tenant: Option<Tenant>, charged: bool) -> Self {
        self.tenant = tenant;
        self.tenant_charged = charged;
        self
    }

    pub(super) fn shared(
        shared: Arc<Shared>,
        cost: Cost,
        held: Box<dyn SharedHold>,
        mark: Option<SharedMark>,
    ) -> Self {
        let mut reservation = Reservation::new(shared, cost, None);
        reservation.held = Some(held);
        reservation.shared_mark = mark;
        reservation
    }

    /// What was reserved.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// Who the call is for, when it was reserved with
    /// [`Limiter::acquire_for`](crate::Limiter::acquire_for) on a limiter without a shared
    /// store.
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// Where the local buckets stood just after this reservation was charged, for
    /// reconciling the server's count of it later (`None` for one taken through a shared
    /// store).
    pub(crate) fn mark(&self) -> Option<Mark> {
        self.mark
    }

    /// Where the shared store's buckets stood just after this reservation was charged there
    /// (`None` for one taken locally, or on the store's fallback).
    pub(crate) fn shared_mark(&self) -> Option<&SharedMark> {
        self.shared_mark.as_ref()
    }

    /// For a reservation taken through a shared store (feature `redis`): when it starts on
    /// the store's clock (the Redis server's `TIME`), the timeline every process shares; `None`
    /// for a reservation taken locally or on the fallback. Lines up logs across machines, and
    /// lets a test check admissions against the server's own bucket math.
    pub fn shared_start(&self) -> Option<std::time::SystemTime> {
        self.held.as_ref().and_then(|held| held.start())
    }

    /// Records that the request was sent: from now on, dropping the reservation keeps its
    /// charge instead of refunding it, since the provider has counted it.
    pub fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// Settles the reservation to what the request really used: tokens reserved but not used
    /// go back to the buckets, tokens used beyond the reservation are charged (as debt that
    /// refills like any other use). The request itself stays counted.
    #[inline]
    pub fn settle(mut self, usage: Usage) {
        self.release(self.cost.settled(usage));
    }

    /// Keeps the estimate as the final charge (the usage is unknown).
    pub fn keep(mut self) {
        self.release(self.cost);
    }

    /// Gives everything back: the request was never sent.
    pub fn cancel(mut self) {
        self.release(Cost::default());
    }

    /// Ends the reservation with `final_cost` as its charge (for a store that wraps a
    /// reservation of its own).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn release_to(mut self, final_cost: Cost) {
        self.release(final_cost);
    }

    #[inline]
    fn release(&mut self, final_cost: Cost) {
        self.released = true;
        if let Some(held) = self.held.take() {
            let quota = self.shared.lock().quota.clone();
            held.release(&quota, &self.cost, &final_cost);
            return;
        }
        let waker = {
            let mut state = self.shared.lock();
            // Read the clock once, and only when something needs it.
            let mut now = None;
            let mut now = || *now.get_or_insert_with(|| self.shared.now());
            if final_cost != self.cost {
                let charged_at = self.mark.map(|mark| mark.at());
                state
                    .buckets
                    .adjust_charged_at(&self.cost, &final_cost, charged_at, now());
            }
            state.in_flight -= u64::from(self.cost.requests);
            if self.tenant_charged {
                let charged_at = self.mark.map(|mark| mark.at());
                state.tenant_released(&self.tenant, &self.cost, &final_cost, charged_at, now());
            }
            if state.waiting == 0 {
                None
            } else {
                state.head_waker(now())
            }
        };
        wake(waker);
    }
}

impl Drop for Reservation {
    #[inline]
    fn drop(&mut self) {
        if !self.released {
            self.release(if self.sent {
                self.cost
            } else {
                Cost::default()
            });
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("cost", &self.cost)
            .field("sent", &self.sent)
            .field("tenant", &self.tenant)
            .finish()
    }
}
