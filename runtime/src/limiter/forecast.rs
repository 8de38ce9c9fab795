//! When a cost would be admitted, asked without taking it: what a router over several limiters
//! (a deployment pool) compares to pick the one that admits a call soonest.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::gcra::{Buckets, Decision};
use super::tenants::{cap_decision, CapCheck};
use super::Limiter;
use crate::units::cost::{Cost, Dimension};
use crate::units::tenant::Tenant;

/// When a [`Limiter`] would admit a cost if the cost were the next in line, as of now and if
/// nothing else were charged first. Read with [`Limiter::forecast`]; nothing is reserved.
///
/// Waiters already queued on the limiter are not counted (a router that commits to the limiter
/// queues behind them): [`Limiter::waiting`] says whether there are any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forecast {
    /// At `at`: now or later, when every dimension has refilled enough for the whole cost and
    /// any hold (a 429's retry-after) has ended.
    At(Instant),
    /// Not before `not_before`, and then only once a request in flight releases its
    /// concurrency slot: when that happens is not known in advance.
    OnRelease {
        /// When the buckets and holds would let it in.
        not_before: Instant,
    },
    /// Never: the cost is larger than a dimension's capacity.
    TooLarge {
        /// The dimension it does not fit in.
        dimension: Dimension,
        /// What the cost asks for on that dimension.
        requested: u64,
        /// The dimension's capacity after headroom.
        capacity: u64,
    },
    /// Not known here: the state lives in a shared store (Redis), which only a round trip can
    /// ask. Holds set in this process still count: `not_before` is when the last one ends.
    Unknown {
        /// When this process's hold on the limiter ends (now if none).
        not_before: Instant,
    },
}

/// What a [`SharedStore`](super::SharedStore) answers when asked when a cost would be
/// admitted on the shared state ([`SharedStore::forecast`](super::SharedStore::forecast)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedForecast {
    /// Admitted after this wait from when the store answered.
    After(Duration),
    /// The buckets would admit it after this wait, but every concurrency slot is taken until
    /// then at least.
    OnRelease(Duration),
    /// Never: larger than the capacity of `dimension`.
    TooLarge(Dimension),
}

/// The answer of [`SharedStore::forecast`](super::SharedStore::forecast): `None` when the
/// store cannot say (unreachable, or it does not know how).
pub type SharedForecastFuture = Pin<Box<dyn Future<Output = Option<SharedForecast>> + Send>>;

impl Forecast {
    /// The earliest instant it could be admitted, `None` for [`Forecast::TooLarge`].
    pub fn earliest(&self) -> Option<Instant> {
        match *self {
            Forecast::At(at) => Some(at),
            Forecast::OnRelease { not_before } | Forecast::Unknown { not_before } => {
                Some(not_before)
            }
            Forecast::TooLarge { .. } => None,
        }
    }

    /// How long from `now` until [`earliest`](Forecast::earliest), zero if it has passed.
    pub fn wait_from(&self, now: Instant) -> Option<Duration> {
        self.earliest().map(|at| at.saturating_duration_since(now))
    }
}

impl Limiter {
    /// When `cost` would be admitted if it asked now with nobody ahead of it, without
    /// reserving anything: every dimension, a hold in force, and the concurrency cap. It
    /// mirrors the admission itself: a forecast of now means an
    /// [`acquire`](Limiter::acquire) with nobody waiting is admitted at once.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use std::time::Duration;
    /// use ratelimited::{limiter::{Cost, Forecast}, Limiter, Quota};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let limiter = Limiter::new(Quota::default().tpm(60_000));
    /// let _first = limiter.try_acquire(Cost::request(59_000, 1_000)).unwrap();
    /// // 1,000 tokens refill in 1 s at 60,000 per minute.
    /// let forecast = limiter.forecast(&Cost::request(1_000, 0));
    /// let wait = forecast.wait_from(tokio::time::Instant::now()).unwrap();
    /// assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
    /// assert!(matches!(limiter.forecast(&Cost::request(61_000, 0)), Forecast::TooLarge { .. }));
    /// # }
    /// ```
    pub fn forecast(&self, cost: &Cost) -> Forecast {
        let now_ns = self.shared.now();
        let state = self.shared.lock();
        let held_until = self.shared.instant_at(state.held_until.max(now_ns));
        if self.store.is_some() {
            return Forecast::Unknown {
                not_before: held_until,
            };
        }
        if let Some(t) = state.oversized(cost) {
            return Forecast::TooLarge {
                dimension: t.dimension,
                requested: t.requested,
                capacity: t.capacity,
            };
        }
        let ready = match state.buckets.decide(cost, now_ns) {
            Decision::WaitUntil(at) => at,
            _ => now_ns,
        }
        .max(state.held_until);
        let at = self.shared.instant_at(ready.max(now_ns));
        let requests = u64::from(cost.requests);
        let slot_free = state
            .quota
            .concurrency
            .map(u64::from)
            .is_none_or(|limit| state.in_flight + requests <= limit);
        if slot_free {
            Forecast::At(at)
        } else {
            Forecast::OnRelease { not_before: at }
        }
    }

    /// When `tenant`'s own cap would let `cost` in, as of now, the limiter's buckets and queue
    /// aside: [`Forecast::At`] now when it fits (or the tenant has no cap, or the state lives
    /// in a shared store, whose caps [`forecast_shared_for`](Limiter::forecast_shared_for)
    /// asks), [`Forecast::At`] later while the cap
    /// refills, [`Forecast::OnRelease`] while its concurrency cap is full, and
    /// [`Forecast::TooLarge`] when the cap can never hold the cost. What a router over several
    /// limiters needs so that a deployment where the tenant is at its cap does not look free.
    /// One lock, no allocation unless the tenant has a cap but no state kept.
    pub(crate) fn forecast_tenant_cap(&self, cost: &Cost, tenant: &Tenant) -> Forecast {
        let now_ns = self.shared.now();
        let now = self.shared.instant_at(now_ns);
        if self.store.is_some() {
            return Forecast::At(now);
        }
        let state = self.shared.lock();
        if !state.tenants.capped {
            return Forecast::At(now);
        }
        let check = match state.tenants.map.get(tenant) {
            Some(kept) => kept.check_cap(cost, now_ns),
            // Nothing kept: its cap is full, so only a cost larger than the cap waits.
            None => match state.tenants.policies.cap_of(tenant) {
                None => CapCheck::Fits,
                Some(quota) => fresh_cap(quota, cost, now_ns),
            },
        };
        match check {
            CapCheck::Fits => Forecast::At(now),
            CapCheck::Wait(Some(at)) => Forecast::At(self.shared.instant_at(at.max(now_ns))),
            CapCheck::Wait(None) => Forecast::OnRelease { not_before: now },
            CapCheck::TooLarge {
                dimension,
                requested,
                capacity,
            } => Forecast::TooLarge {
                dimension,
                requested,
                capacity,
            },
        }
    }

    /// [`forecast`](Limiter::forecast), asking the shared store when the limiter's state lives
    /// there (one round trip to Redis, nothing reserved): when the cost would be admitted on
    /// the state every process shares, as of the answer. Without a store, or while the store
    /// cannot say, the same as [`forecast`](Limiter::forecast).
    pub async fn forecast_shared(&self, cost: &Cost) -> Forecast {
        self.forecast_shared_of(cost, None).await
    }

    /// [`forecast_shared`](Limiter::forecast_shared) for a call of `tenant`: with a shared
    /// store, no sooner than the tenant's cap there has room for it too (the cap's buckets are
    /// asked in the same round trip). What a router over several shared limiters needs so that
    /// a deployment where the tenant is at its cap in the fleet does not look free.
    pub async fn forecast_shared_for(&self, cost: &Cost, tenant: &Tenant) -> Forecast {
        self.forecast_shared_of(cost, Some(tenant)).await
    }

    pub(crate) async fn forecast_shared_of(
        &self,
        cost: &Cost,
        tenant: Option<&Tenant>,
    ) -> Forecast {
        let local = self.forecast(cost);
        let (Some(store), Forecast::Unknown { not_before }) = (self.store.as_ref(), local) else {
            return local;
        };
        let quota = self.quota();
        let asked = match tenant {
            Some(tenant) => store.forecast_for(self, &quota, cost, tenant),
            None => store.forecast(&quota, cost),
        };
        let Some(answer) = asked.await else {
            return local;
        };
        let now = Instant::now();
        match answer {
            SharedForecast::After(wait) => Forecast::At((now + wait).max(not_before)),
            SharedForecast::OnRelease(wait) => Forecast::OnRelease {
                not_before: (now + wait).max(not_before),
            },
            SharedForecast::TooLarge(dimension) => Forecast::TooLarge {
                dimension,
                requested: dimension.charge(cost),
                capacity: quota.capacity(dimension).unwrap_or(0),
            },
        }
    }
}

/// What a full cap of `quota` says of `cost`: it fits, unless it is larger than the cap.
fn fresh_cap(quota: &crate::units::quota::Quota, cost: &Cost, now: u64) -> CapCheck {
    let concurrency = quota.concurrency.map(u64::from);
    match cap_decision(concurrency, cost, || Buckets::new(quota).decide(cost, now)) {
        Err(too_large) => too_large,
        Ok(_) => CapCheck::Fits,
    }
}
