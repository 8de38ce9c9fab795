//! The limiter of one limit family: every dimension at once, FIFO within each priority lane,
//! exact waits on tokio's clock.
//!
//! Bottom up: `gcra` (the pure buckets), `lanes` (priority lanes and their turns), `tenants`
//! (the users sharing a lane: fair share, caps, bounded memory), `state` (the queue and
//! buckets behind one lock), `reservation` (what an admitted caller holds),
//! `acquire` (the future a caller awaits), and here the handle, [`Limiter`], with the
//! [`SharedStore`] trait a backend implements to keep the state elsewhere (the Redis store
//! does): the limiter never names its backends.

pub mod gcra;

pub mod lanes;

pub mod tenants;

mod state;

pub mod reservation;

pub mod acquire;

pub mod forecast;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use acquire::Acquire;
pub use forecast::{Forecast, SharedForecast, SharedForecastFuture};
pub use lanes::{InvalidLaneShare, Priority, DEFAULT_LANE_SHARE};
pub(crate) use reservation::SharedMark;
pub use reservation::{Reservation, SharedHold};
pub use tenants::{InvalidTenantWeight, MAX_TENANT_WEIGHT};

use crate::units::cost::{Cost, Dimension};
use gcra::{duration_ns, Buckets, Mark, Overcount};
use lanes::LaneTurns;
use state::{wake, Gate, Shared, State};

use crate::units::quota::Quota;
use crate::units::tenant::Tenant;

/// A backend that keeps a limiter's state outside this process (the Redis store), so that every
/// process pointed at it shares one limit. Like governor's `StateStore`: the limiter calls this
/// trait and never names the backend.
///
/// A store charges reservations itself; the limiter forwards its limit changes, holds and
/// tightenings so they reach every process.
pub trait SharedStore: Send + Sync + 'static {
    /// Reserves `cost` in `priority`'s lane on the shared state (or wherever the store's
    /// failure policy sends it while the backend is away). A reservation charged on the shared
    /// state is built with [`Limiter::shared_reservation`] before any wait, so that dropping
    /// the caller refunds it.
    fn acquire(&self, limiter: &Limiter, cost: Cost, priority: Priority) -> acquire::SharedAcquire;

    /// Reserves `cost` for `tenant` (see [`Limiter::acquire_for`]): by default as
    /// [`acquire`](SharedStore::acquire) does, without the tenant.
    fn acquire_for(
        &self,
        limiter: &Limiter,
        cost: Cost,
        priority: Priority,
        tenant: &Tenant,
    ) -> acquire::SharedAcquire {
        let _ = tenant;
        self.acquire(limiter, cost, priority)
    }

    /// Whether the store can keep `cap` as a tenant's cap (checked when one is set).
    ///
    /// # Errors
    /// [`Error::Config`](crate::units::error::Error::Config) naming what the store cannot keep.
    fn check_tenant_cap(&self, cap: &Quota) -> Result<(), crate::units::error::Error> {
        let _ = cap;
        Ok(())
    }
    /// The limits changed.
    fn set_quota(&self, quota: &Quota);
    /// Admit nobody for `duration` (a 429's retry-after), in every process.
    fn hold(&self, quota: &Quota, duration: Duration);
    /// Raise the units in use on `dimension` to at least `used`, in every process.
    fn tighten(&self, quota: &Quota, dimension: Dimension, used: u64);
    /// Whether the backend is unreachable right now.
    fn is_down(&self) -> bool;
    /// When `cost` would be admitted on the shared state under `quota` if it asked now with
    /// nobody ahead of it, without reserving anything (what a router over several limiters
    /// compares). The default cannot say.
    fn forecast(&self, quota: &Quota, cost: &Cost) -> SharedForecastFuture {
        let _ = (quota, cost);
        Box::pin(std::future::ready(None))
    }

    /// [`forecast`](SharedStore::forecast) for `tenant` of `limiter`: no sooner than the
    /// tenant's cap in the store has room too. By default as `forecast`.
    fn forecast_for(
        &self,
        limiter: &Limiter,
        quota: &Quota,
        cost: &Cost,
        tenant: &Tenant,
    ) -> SharedForecastFuture {
        let _ = (limiter, tenant);
        self.forecast(quota, cost)
    }
}

/// A rate limiter for one limit family: requests and tokens per minute and per day, input and
/// output tokens, an in-flight cap and a minimum interval, all reserved at once.
///
/// - **All or nothing**: [`acquire`](Limiter::acquire) charges every dimension together once the
///   whole cost fits; it never holds part of a quota while waiting for the rest.
/// - **FIFO within priority lanes**: each [`Priority`] lane admits its waiters strictly in
///   arrival order, so a large request is never starved by a stream of small ones. A higher
///   lane goes before a lower one, except that a waiting lower lane takes one turn in every
///   few (its guaranteed share, [`set_lane_share`](Limiter::set_lane_share)). Only the waiter
///   that goes next keeps a timer; a refund, a released slot or a limit change wakes that one
///   waiter and nobody else.
/// - **Too large fails now**: a cost above a dimension's capacity returns
///   [`Error::RequestTooLarge`](crate::units::error::Error::RequestTooLarge) immediately instead of a wait that cannot end.
/// - **Exact, virtual-time friendly**: all time comes from [`tokio::time`], so under
///   `#[tokio::test(start_paused = true)]` waits pass in virtual time with exact durations.
///
/// Cloning is cheap and every clone shares the same state.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{limiter::Cost, Limiter, Quota, Usage};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
/// let limiter = Limiter::new(Quota::default().rpm(500).tpm(30_000));
/// let reservation = limiter.acquire(Cost::request(1_200, 256)).await?;
/// // ... send the request ...
/// reservation.settle(Usage::new(1_180, 97)); // refunds what the call did not use
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
    /// Where the state lives when it is shared (the local buckets then stay unused).
    store: Option<Arc<dyn SharedStore>>,
}

impl Limiter {
    /// A limiter enforcing `quota`, with full buckets.
    pub fn new(quota: Quota) -> Self {
        Limiter::build(quota, None)
    }

    /// A limiter whose state lives in `store`, shared with every process using it. Its local
    /// buckets stay unused, but keep the limits in force.
    pub fn with_store(quota: Quota, store: Arc<dyn SharedStore>) -> Self {
        Limiter::build(quota, Some(store))
    }

    fn build(quota: Quota, store: Option<Arc<dyn SharedStore>>) -> Self {
        Limiter {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                state: Mutex::new(State {
                    buckets: Buckets::new(&quota),
                    quota,
                    in_flight: 0,
                    held_until: 0,
                    lanes: Default::default(),
                    tenants: tenants::Tenants::new(),
                    turns: LaneTurns::new(),
                    waiting: 0,
                    next_id: 0,
                }),
            }),
            store,
        }
    }

    /// Waits until `cost` fits every dimension, in arrival order, and reserves it, in the
    /// [`Priority::Normal`] lane.
    ///
    /// Fails at once with [`Error::RequestTooLarge`](crate::units::error::Error::RequestTooLarge) when `cost` exceeds a dimension's
    /// capacity. Dropping the future before it resolves gives up the place in the queue and
    /// reserves nothing.
    ///
    /// With a shared store (feature `redis`), the reservation goes to Redis in a batch with
    /// this process's other waiters, in their order: the store charges it at once and says how
    /// long to sleep.
    #[inline]
    pub fn acquire(&self, cost: Cost) -> Acquire {
        self.acquire_with(cost, Priority::Normal)
    }

    /// Like [`acquire`](Limiter::acquire), waiting in `priority`'s lane: ahead of every lower
    /// lane (which keeps its guaranteed share), behind every earlier waiter of the same lane.
    ///
    /// With a shared store (feature `redis`), lanes order this process's own waiters: other
    /// processes' reservations are not in this queue, and Redis admits them in the order the
    /// processes send.
    pub fn acquire_with(&self, cost: Cost, priority: Priority) -> Acquire {
        match &self.store {
            Some(store) => {
                Acquire::through_store(store.acquire(self, cost, priority), cost, priority.lane())
            }
            None => Acquire::local(self.shared.clone(), cost, priority.lane(), None),
        }
    }

    /// Like [`acquire_with`](Limiter::acquire_with), for `tenant`: one of many users sharing
    /// this limit family.
    ///
    /// - **Fair share**: within the lane, tenants with waiters take turns by weighted fair
    ///   queuing on tokens ([`set_tenant_weight`](Limiter::set_tenant_weight), default 1), FIFO
    ///   within a tenant. A tenant arriving behind another's long queue waits for at most about
    ///   one admission per tenant waiting, not for the queue. Lanes still come first, with
    ///   their guaranteed share; calls without a tenant are one more tenant of weight 1.
    /// - **Caps**: the tenant's own limits
    ///   ([`set_tenant_cap`](Limiter::set_tenant_cap), or the family's default from
    ///   `RATE_LIMITED_<FAMILY>_TENANT_<DIM>`). A tenant at its cap waits without holding
    ///   anyone else back; a cost above its cap's capacity fails at once with
    ///   [`Error::RequestTooLarge`](crate::units::error::Error::RequestTooLarge).
    ///
    /// With a shared store (feature `redis`), the tenant's cap is shared by every process (its
    /// buckets live in Redis beside the family's, charged in the same script call), and fair
    /// share orders this process's own waiters as they go to Redis: across processes, each
    /// process's turns are fair, and the processes interleave in Redis by arrival.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::{limiter::Cost, Limiter, Priority, Quota, Tenant};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
    /// let limiter = Limiter::new(Quota::default().tpm(100_000));
    /// limiter.set_tenant_cap(&Tenant::from("trial"), Some(Quota::default().tpm(5_000)))?;
    /// let tenant = Tenant::from("trial");
    /// let reservation = limiter
    ///     .acquire_for(Cost::request(1_200, 256), Priority::Normal, &tenant)
    ///     .await?;
    /// assert_eq!(reservation.tenant(), Some(&tenant));
    /// # drop(reservation); Ok(()) }
    /// ```
    pub fn acquire_for(&self, cost: Cost, priority: Priority, tenant: &Tenant) -> Acquire {
        match &self.store {
            Some(store) => Acquire::through_store(
                store.acquire_for(self, cost, priority, tenant),
                cost,
                priority.lane(),
            ),
            None => Acquire::local(
                self.shared.clone(),
                cost,
                priority.lane(),
                Some(tenant.clone()),
            ),
        }
    }

    /// Sets `tenant`'s weight in the fair share: a tenant of weight 2 gets twice the tokens of
    /// a tenant of weight 1 while both wait. Kept until changed, whether or not the tenant is
    /// active.
    ///
    /// # Errors
    /// [`InvalidTenantWeight`] for a weight outside 1..=[`MAX_TENANT_WEIGHT`].
    pub fn set_tenant_weight(
        &self,
        tenant: &Tenant,
        weight: u32,
    ) -> Result<(), InvalidTenantWeight> {
        if !(1..=MAX_TENANT_WEIGHT).contains(&weight) {
            return Err(InvalidTenantWeight(weight));
        }
        let now = self.shared.now();
        let mut state = self.shared.lock();
        if weight == 1 {
            state.tenants.policies.weights.remove(tenant);
        } else {
            state
                .tenants
                .policies
                .weights
                .insert(tenant.clone(), weight);
        }
        state.tenants.refresh_policies(tenant, now);
        Ok(())
    }

    /// Sets `tenant`'s own cap, in place of the family's default: `Some(quota)` limits the
    /// tenant on every dimension `quota` limits (its headroom applies; 1 unless set), `None`
    /// leaves it uncapped whatever the default. What the tenant has in use stays counted.
    ///
    /// # Errors
    /// [`Error::Config`](crate::units::error::Error::Config) for a quota that does not
    /// [`validate`](Quota::validate).
    pub fn set_tenant_cap(
        &self,
        tenant: &Tenant,
        cap: Option<Quota>,
    ) -> Result<(), crate::units::error::Error> {
        self.check_cap(cap.as_ref())?;
        let now = self.shared.now();
        let waker = {
            let mut state = self.shared.lock();
            state.tenants.policies.caps.insert(tenant.clone(), cap);
            state.tenants.refresh_policies(tenant, now);
            state.head_waker(now)
        };
        wake(waker);
        Ok(())
    }

    /// Sets the cap of every tenant without one of its own (see
    /// [`set_tenant_cap`](Limiter::set_tenant_cap)); `None` removes it. A registry sets it from
    /// `RATE_LIMITED_<FAMILY>_TENANT_<DIM>`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::units::error::Error::Config) for a quota that does not
    /// [`validate`](Quota::validate).
    pub fn set_default_tenant_cap(
        &self,
        cap: Option<Quota>,
    ) -> Result<(), crate::units::error::Error> {
        self.check_cap(cap.as_ref())?;
        let now = self.shared.now();
        let waker = {
            let mut state = self.shared.lock();
            state.tenants.policies.default_cap = cap;
            state.tenants.refresh_default(now);
            state.head_waker(now)
        };
        wake(waker);
        Ok(())
    }

    /// Checks a tenant cap given in code, and that the shared store (if any) can keep it.
    fn check_cap(&self, cap: Option<&Quota>) -> Result<(), crate::units::error::Error> {
        tenants::validate_cap(cap)?;
        match (&self.store, cap) {
            (Some(store), Some(cap)) => store.check_tenant_cap(cap),
            _ => Ok(()),
        }
    }

    /// The cap `tenant` is under: its own, else the default.
    pub fn tenant_cap(&self, tenant: &Tenant) -> Option<Quota> {
        self.shared.lock().tenants.policies.cap_of(tenant).cloned()
    }

    /// The cap of every tenant without one of its own (see
    /// [`set_default_tenant_cap`](Limiter::set_default_tenant_cap)).
    pub fn default_tenant_cap(&self) -> Option<Quota> {
        self.shared.lock().tenants.policies.default_cap.clone()
    }

    /// `tenant`'s weight in the fair share (see
    /// [`set_tenant_weight`](Limiter::set_tenant_weight)): 1 unless set.
    pub fn tenant_weight(&self, tenant: &Tenant) -> u32 {
        self.shared.lock().tenants.policies.weight_of(tenant)
    }

    /// Units in use on `dimension` of `tenant`'s cap right now (its calls in flight under the
    /// cap for [`Dimension::Concurrency`]), or `None` if its cap does not limit `dimension` or
    /// nothing is kept for it (an idle tenant's cap is full).
    pub fn tenant_in_use(&self, tenant: &Tenant, dimension: Dimension) -> Option<u64> {
        let now = self.shared.now();
        let state = self.shared.lock();
        let cap = state.tenants.map.get(tenant)?.cap.as_ref()?;
        match dimension {
            Dimension::Concurrency => cap.concurrency.map(|_| state.tenants.map[tenant].in_flight),
            _ => cap.buckets.level(dimension, now),
        }
    }

    /// How many tenants have state kept right now: those with waiters, calls in flight under a
    /// cap, or a cap not yet refilled (and, until the next sweep, some idle ones: at most
    /// twice the active, plus 1,024). For measuring memory.
    pub fn tenants_tracked(&self) -> usize {
        self.shared.lock().tenants.map.len()
    }

    /// A reservation charged on this limiter's shared store: releasing it hands `held` back
    /// there. For [`SharedStore`] implementations.
    pub fn shared_reservation(&self, cost: Cost, held: Box<dyn SharedHold>) -> Reservation {
        Reservation::shared(self.shared.clone(), cost, held, None)
    }

    /// Like [`shared_reservation`](Limiter::shared_reservation), with where the store's
    /// buckets stood just after the charge.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn shared_reservation_marked(
        &self,
        cost: Cost,
        held: Box<dyn SharedHold>,
        mark: SharedMark,
        tenant: Option<Tenant>,
    ) -> Reservation {
        Reservation::shared(self.shared.clone(), cost, held, Some(mark)).for_tenant(tenant, false)
    }

    /// Whether this limiter's state lives in a shared store that is unreachable right now
    /// (its calls then go to the store's local fallback, or fail, as configured). False for a
    /// limiter with no shared store.
    pub fn shared_store_down(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.is_down())
    }

    /// Reserves `cost` only if it fits now and nobody is waiting ahead of it.
    ///
    /// A limiter whose state is shared through Redis cannot know that without a round trip:
    /// it answers [`TryAcquireError::WouldWait`] (use [`acquire`](Limiter::acquire)).
    #[inline]
    pub fn try_acquire(&self, cost: Cost) -> Result<Reservation, TryAcquireError> {
        if self.store.is_some() {
            return Err(TryAcquireError::WouldWait);
        }
        let mut state = self.shared.lock();
        if state.waiting > 0 {
            return Err(TryAcquireError::WouldWait);
        }
        let now = self.shared.now();
        match state.try_admit(&cost, now) {
            Gate::Admit(mark, _) => Ok(Reservation::new(self.shared.clone(), cost, Some(mark))),
            Gate::Wait(_) => Err(TryAcquireError::WouldWait),
            Gate::TooLarge(t) => Err(TryAcquireError::TooLarge {
                dimension: t.dimension,
                requested: t.requested,
                capacity: t.capacity,
            }),
        }
    }

    /// Sets the minimum share of admissions a waiting lower [`Priority`] lane keeps while
    /// higher lanes have waiters too: with `share` = 0.1 (the default, [`DEFAULT_LANE_SHARE`]),
    /// a lane takes a turn after at most nine admissions of higher lanes. The share counts
    /// admissions, not tokens. The lanes' queues and places are kept.
    ///
    /// # Errors
    /// [`InvalidLaneShare`] for a share outside (0, 0.5].
    pub fn set_lane_share(&self, share: f64) -> Result<(), InvalidLaneShare> {
        let now = self.shared.now();
        let waker = {
            let mut state = self.shared.lock();
            state.turns.set_share(share)?;
            state.head_waker(now)
        };
        wake(waker);
        Ok(())
    }

    /// The limits in force.
    pub fn quota(&self) -> Quota {
        self.shared.lock().quota.clone()
    }

    /// Replaces the limits without losing state: what is in use on each dimension stays in
    /// use, waiters keep their places, and the head of the queue re-checks at once.
    pub fn set_quota(&self, quota: Quota) {
        let now = self.shared.now();
        if let Some(store) = &self.store {
            store.set_quota(&quota);
        }
        let waker = {
            let mut state = self.shared.lock();
            state.buckets.set_quota(&quota, now);
            state.quota = quota;
            state.head_waker(now)
        };
        wake(waker);
    }

    /// Counts per the server's fixed windows from now on, `boundary` being the latest moment
    /// one of them can start (the others whole minutes before and after) and `guard` how
    /// long before a boundary a request may be sent and still reach the server after it.
    /// Takes effect with [`Window::Fixed`](crate::units::quota::Window::Fixed) only (kept
    /// for when the family is set to it); the head of the queue re-checks at once.
    pub(crate) fn align_windows(&self, boundary: Instant, guard: Duration) {
        let minute = Duration::from_secs(60);
        let origin = self.shared.origin;
        let mut boundary = boundary;
        while boundary < origin {
            boundary += minute;
        }
        let aligned = gcra::Aligned {
            boundary: duration_ns(boundary - origin),
            guard: duration_ns(guard),
        };
        let waker = {
            let mut state = self.shared.lock();
            let fixed = state.quota.window == crate::units::quota::Window::Fixed;
            state.buckets.align(aligned, fixed);
            state.head_waker(self.shared.now())
        };
        wake(waker);
    }

    /// When the charge at `mark` was made.
    pub(crate) fn instant_of(&self, mark: &Mark) -> Instant {
        self.shared.instant_at(mark.at())
    }

    /// Whether the limiter counts per the server's fixed windows: the family is set to
    /// [`Window::Fixed`](crate::units::quota::Window::Fixed) and an answer has shown where
    /// the server's windows start.
    pub fn windows_aligned(&self) -> bool {
        self.shared.lock().buckets.aligned()
    }

    /// Admits nobody for `duration` from now (for example after a 429 with a retry-after), so
    /// that concurrent callers wait instead of piling on. A shorter hold never shortens a
    /// longer one already in force.
    pub fn hold_for(&self, duration: Duration) {
        let until = self.shared.now().saturating_add(duration_ns(duration));
        let mut state = self.shared.lock();
        state.held_until = state.held_until.max(until);
        if let Some(store) = &self.store {
            store.hold(&state.quota, duration);
        }
    }

    /// Raises the units in use on `dimension` to at least `used` (what the server reports in
    /// use), never lowering them.
    pub fn tighten(&self, dimension: Dimension, used: u64) {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.buckets.tighten(dimension, used, now);
        if let Some(store) = &self.store {
            store.tighten(&state.quota, dimension, used);
        }
    }

    /// Brings `dimension` toward what a server reported in use when it answered the request
    /// of a reservation taken at `mark` (see [`Reservation::mark`]) after `processing` on its
    /// side (when the server says): the report, refilled since the server counted it, plus
    /// what this limiter charged after the mark (see `Buckets::reconcile`). Without a mark the
    /// report counts as in use now and only raises the level, as [`tighten`](Limiter::tighten)
    /// does. Local buckets only: a family whose buckets live in Redis is reconciled there
    /// (see the feedback).
    ///
    /// With `judge` (a report the prompt estimate may be judged by), returns what the reports
    /// have just proved of the server's charging beyond the reading's uncertainty, for the
    /// charge correction; `None` otherwise, without a mark, and when `dimension` is not
    /// limited.
    pub(crate) fn reconcile(
        &self,
        dimension: Dimension,
        reported: u64,
        mark: Option<&Mark>,
        processing: Option<Duration>,
        judge: bool,
    ) -> Option<Overcount> {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        match mark {
            Some(mark) => {
                let counted_by = mark.counted_by(now, processing);
                let times = (counted_by, now);
                state
                    .buckets
                    .reconcile(dimension, reported, mark, times, judge)
            }
            None => {
                state.buckets.tighten(dimension, reported, now);
                None
            }
        }
    }

    /// Units in use on `dimension` right now (requests in flight for
    /// [`Dimension::Concurrency`]), or `None` if it is not limited.
    ///
    /// `None` too for a limiter whose state lives in a shared store: its buckets' levels are
    /// in the store, and this process's local buckets are never charged.
    pub fn in_use(&self, dimension: Dimension) -> Option<u64> {
        if self.store.is_some() {
            return None;
        }
        let now = self.shared.now();
        let state = self.shared.lock();
        match dimension {
            Dimension::Concurrency => state.quota.concurrency.map(|_| state.in_flight),
            _ => state.buckets.level(dimension, now),
        }
    }

    /// How many callers are waiting, in all lanes.
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiting
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Limiter")
            .field("quota", &state.quota)
            .field("in_flight", &state.in_flight)
            .field("waiting", &state.waiting)
            .finish()
    }
}

/// Why [`Limiter::try_acquire`] did not reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAcquireError {
    /// The cost does not fit now, or others are waiting first.
    #[error("the request would have to wait")]
    WouldWait,
    /// The cost can never fit: see [`Error::RequestTooLarge`](crate::units::error::Error::RequestTooLarge).
    #[error("request too large: it needs {requested} {dimension} but the capacity is {capacity}")]
    TooLarge {
        /// The dimension it does not fit in.
        dimension: Dimension,
        /// What the request asked for on that dimension.
        requested: u64,
        /// The dimension's capacity after headroom.
        capacity: u64,
    },
}
