//! The limiter of one limit family: every dimension at once, strict FIFO, exact waits.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::gcra::{duration_ns, Buckets, Decision, Mark};
use crate::priority::{InvalidLaneShare, LaneTurns, Priority, LANES};
use crate::quota::{Cost, Dimension, Quota};

mod reservation;
pub use reservation::Reservation;

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
///   [`Error::RequestTooLarge`] immediately instead of a wait that cannot end.
/// - **Exact, virtual-time friendly**: all time comes from [`tokio::time`], so under
///   `#[tokio::test(start_paused = true)]` waits pass in virtual time with exact durations.
///
/// Cloning is cheap and every clone shares the same state.
///
/// ```
/// use ratelimited_runtime::{Cost, Limiter, Quota, Usage};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited_runtime::Error> {
/// let limiter = Limiter::new(Quota::default().rpm(500).tpm(30_000));
/// let reservation = limiter.acquire(Cost::request(1_200, 256)).await?;
/// // ... send the request ...
/// reservation.settle(Usage::new(1_180, 97)); // refunds what the call did not use
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

struct Shared {
    origin: Instant,
    state: Mutex<State>,
    /// The family's state in Redis, when it is shared (the local buckets then stay unused).
    #[cfg(feature = "redis")]
    store: Option<crate::store::SharedFamily>,
}

struct State {
    quota: Quota,
    buckets: Buckets,
    in_flight: u64,
    /// No admission before this time (ns since origin): set when the server answers 429.
    held_until: u64,
    /// One FIFO queue per [`Priority`] lane, highest first.
    lanes: [VecDeque<Waiter>; LANES],
    /// Which lane goes next.
    turns: LaneTurns,
    /// Waiters in all lanes.
    waiting: usize,
    next_id: u64,
}

struct Waiter {
    id: u64,
    waker: Option<Waker>,
}

/// What stands between a cost and its admission.
enum Gate {
    /// Charged; where the buckets stood just after.
    Admit(Mark),
    /// Wait until this time (ns since origin), or for a released slot when `None`.
    Wait(Option<u64>),
    TooLarge(TooLarge),
}

/// A cost that can never fit (kept small: it travels the hot path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TooLarge {
    dimension: Dimension,
    requested: u64,
    capacity: u64,
}

impl From<TooLarge> for Error {
    fn from(t: TooLarge) -> Self {
        Error::RequestTooLarge {
            dimension: t.dimension,
            requested: t.requested,
            capacity: t.capacity,
        }
    }
}

impl State {
    /// Admits `cost` (charging it) if it fits now.
    #[inline]
    fn try_admit(&mut self, cost: &Cost, now: u64) -> Gate {
        let requests = u64::from(cost.requests);
        let concurrency = self.quota.concurrency.map(u64::from);
        if let Some(limit) = concurrency.filter(|limit| requests > *limit) {
            return Gate::TooLarge(TooLarge {
                dimension: Dimension::Concurrency,
                requested: requests,
                capacity: limit,
            });
        }
        let ready = match self.buckets.decide(cost, now) {
            Decision::TooLarge {
                dimension,
                requested,
                capacity,
            } => {
                return Gate::TooLarge(TooLarge {
                    dimension,
                    requested,
                    capacity,
                })
            }
            Decision::Admit => now,
            Decision::WaitUntil(at) => at,
        }
        .max(self.held_until);
        if ready > now {
            Gate::Wait(Some(ready))
        } else if concurrency.is_some_and(|limit| self.in_flight + requests > limit) {
            Gate::Wait(None)
        } else {
            let mark = self.buckets.charge(cost, now);
            self.in_flight += requests;
            Gate::Admit(mark)
        }
    }

    /// The first dimension `cost` can never fit, checked on arrival so that a request behind
    /// a queue fails at once instead of when it reaches the head.
    fn oversized(&self, cost: &Cost) -> Option<TooLarge> {
        let requests = u64::from(cost.requests);
        if let Some(limit) = self.quota.concurrency.map(u64::from) {
            if requests > limit {
                return Some(TooLarge {
                    dimension: Dimension::Concurrency,
                    requested: requests,
                    capacity: limit,
                });
            }
        }
        match self.buckets.oversized(cost) {
            Some(Decision::TooLarge {
                dimension,
                requested,
                capacity,
            }) => Some(TooLarge {
                dimension,
                requested,
                capacity,
            }),
            _ => None,
        }
    }

    /// The lane whose head goes next.
    #[inline]
    fn next_lane(&self) -> Option<usize> {
        if self.waiting == 0 {
            return None;
        }
        self.turns.next(&self.lanes)
    }

    /// The waiter that goes next: its lane and id.
    fn next_waiter(&self) -> Option<(usize, u64)> {
        let lane = self.next_lane()?;
        self.lanes[lane].front().map(|w| (lane, w.id))
    }

    /// The waker of the waiter that goes next, to let it look again.
    #[inline]
    fn head_waker(&mut self) -> Option<Waker> {
        let lane = self.next_lane()?;
        self.lanes[lane].front_mut().and_then(|w| w.waker.take())
    }

    fn enqueue(&mut self, lane: usize, waker: Option<Waker>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.turns.arriving(&self.lanes, lane);
        self.lanes[lane].push_back(Waiter { id, waker });
        self.waiting += 1;
        id
    }

    fn remove(&mut self, lane: usize, position: usize) {
        self.lanes[lane].remove(position);
        self.waiting -= 1;
    }

    fn position(&self, lane: usize, id: u64) -> Option<usize> {
        // Ids are handed out in increasing order and each lane keeps arrival order.
        self.lanes[lane].binary_search_by_key(&id, |w| w.id).ok()
    }
}

impl Limiter {
    /// A limiter enforcing `quota`, with full buckets.
    pub fn new(quota: Quota) -> Self {
        Limiter::build(
            quota,
            #[cfg(feature = "redis")]
            None,
        )
    }

    /// A limiter whose state lives in Redis, shared with every process using the same keys.
    #[cfg(feature = "redis")]
    pub(crate) fn with_shared_store(quota: Quota, store: crate::store::SharedFamily) -> Self {
        Limiter::build(quota, Some(store))
    }

    fn build(
        quota: Quota,
        #[cfg(feature = "redis")] store: Option<crate::store::SharedFamily>,
    ) -> Self {
        Limiter {
            shared: Arc::new(Shared {
                #[cfg(feature = "redis")]
                store,
                origin: Instant::now(),
                state: Mutex::new(State {
                    buckets: Buckets::new(&quota),
                    quota,
                    in_flight: 0,
                    held_until: 0,
                    lanes: Default::default(),
                    turns: LaneTurns::new(),
                    waiting: 0,
                    next_id: 0,
                }),
            }),
        }
    }

    /// Waits until `cost` fits every dimension, in arrival order, and reserves it, in the
    /// [`Priority::Normal`] lane.
    ///
    /// Fails at once with [`Error::RequestTooLarge`] when `cost` exceeds a dimension's
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
        #[cfg(feature = "redis")]
        if let Some(store) = self.shared.store.clone() {
            let limiter = self.clone();
            return Acquire {
                shared: None,
                cost,
                lane: priority.lane(),
                id: None,
                sleep: None,
                shared_store: Some(Box::pin(async move {
                    store.acquire(&limiter, cost, priority).await
                })),
            };
        }
        Acquire {
            shared: Some(self.shared.clone()),
            cost,
            lane: priority.lane(),
            id: None,
            sleep: None,
            #[cfg(feature = "redis")]
            shared_store: None,
        }
    }

    /// A reservation taken on the shared store: releasing it goes back there.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_reservation(&self, cost: Cost, held: crate::store::Held) -> Reservation {
        let mut reservation = Reservation::new(self.shared.clone(), cost, None);
        reservation.held = Some(held);
        reservation
    }

    /// The shared store this limiter's state lives in, if any.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_store(&self) -> Option<&crate::store::SharedFamily> {
        self.shared.store.as_ref()
    }

    /// Whether this limiter's state lives in a shared store that is unreachable right now
    /// (its calls then go to the local fallback, or fail, as configured).
    #[cfg(feature = "redis")]
    pub fn shared_store_down(&self) -> bool {
        self.shared.store.as_ref().is_some_and(|s| s.is_down())
    }

    /// Reserves `cost` only if it fits now and nobody is waiting ahead of it.
    ///
    /// A limiter whose state is shared through Redis cannot know that without a round trip:
    /// it answers [`TryAcquireError::WouldWait`] (use [`acquire`](Limiter::acquire)).
    #[inline]
    pub fn try_acquire(&self, cost: Cost) -> Result<Reservation, TryAcquireError> {
        #[cfg(feature = "redis")]
        if self.shared.store.is_some() {
            return Err(TryAcquireError::WouldWait);
        }
        let mut state = self.shared.lock();
        if state.waiting > 0 {
            return Err(TryAcquireError::WouldWait);
        }
        let now = self.shared.now();
        match state.try_admit(&cost, now) {
            Gate::Admit(mark) => Ok(Reservation::new(self.shared.clone(), cost, Some(mark))),
            Gate::Wait(_) => Err(TryAcquireError::WouldWait),
            Gate::TooLarge(t) => Err(TryAcquireError::TooLarge {
                dimension: t.dimension,
                requested: t.requested,
                capacity: t.capacity,
            }),
        }
    }

    /// Sets the minimum share of admissions a waiting lower [`Priority`] lane keeps while
    /// higher lanes have waiters too: with `share` = 0.1 (the default, [`DEFAULT_LANE_SHARE`](crate::DEFAULT_LANE_SHARE)),
    /// a lane takes a turn after at most nine admissions of higher lanes. The share counts
    /// admissions, not tokens. The lanes' queues and places are kept.
    ///
    /// # Errors
    /// [`InvalidLaneShare`] for a share outside (0, 0.5].
    pub fn set_lane_share(&self, share: f64) -> Result<(), InvalidLaneShare> {
        let waker = {
            let mut state = self.shared.lock();
            state.turns.set_share(share)?;
            state.head_waker()
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
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared.store {
            store.set_quota(&quota);
        }
        let waker = {
            let mut state = self.shared.lock();
            state.buckets.set_quota(&quota, now);
            state.quota = quota;
            state.head_waker()
        };
        wake(waker);
    }

    /// Admits nobody for `duration` from now (for example after a 429 with a retry-after), so
    /// that concurrent callers wait instead of piling on. A shorter hold never shortens a
    /// longer one already in force.
    pub fn hold_for(&self, duration: Duration) {
        let until = self.shared.now().saturating_add(duration_ns(duration));
        let mut state = self.shared.lock();
        state.held_until = state.held_until.max(until);
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared.store {
            store.hold(&state.quota, duration);
        }
    }

    /// Raises the units in use on `dimension` to at least `used` (what the server reports in
    /// use), never lowering them.
    pub fn tighten(&self, dimension: Dimension, used: u64) {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.buckets.tighten(dimension, used, now);
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared.store {
            store.tighten(&state.quota, dimension, used);
        }
    }

    /// Brings `dimension` toward what a server reported in use when it answered the request
    /// of a reservation taken at `mark` (see [`Reservation::mark`]) after `processing` on its
    /// side (when the server says): the report, refilled since the server counted it, plus
    /// what this limiter charged after the mark (see `Buckets::reconcile`). Never lowers the
    /// level. Without a mark the report counts as in use now, as [`tighten`](Limiter::tighten)
    /// does. Local buckets only: a family whose buckets live in Redis is reconciled there
    /// (see the feedback). Returns the units in use before and the units the report implies,
    /// when `dimension` is limited.
    pub(crate) fn reconcile(
        &self,
        dimension: Dimension,
        reported: u64,
        mark: Option<&Mark>,
        processing: Option<Duration>,
    ) -> Option<(u64, u64)> {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        match mark {
            Some(mark) => {
                let counted_by = mark.counted_by(now, processing);
                state
                    .buckets
                    .reconcile(dimension, reported, mark, counted_by, now)
            }
            None => {
                let before = state.buckets.level(dimension, now)?;
                state.buckets.tighten(dimension, reported, now);
                Some((before, reported))
            }
        }
    }

    /// Units in use on `dimension` right now (requests in flight for
    /// [`Dimension::Concurrency`]), or `None` if it is not limited.
    ///
    /// For a limiter shared through Redis this is this process's local view only: the
    /// buckets' real levels live in Redis.
    pub fn in_use(&self, dimension: Dimension) -> Option<u64> {
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

impl Shared {
    #[inline]
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await point, so a panic elsewhere cannot leave
        // it half-updated: recover from poisoning instead of spreading the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    fn now(&self) -> u64 {
        duration_ns(Instant::now().saturating_duration_since(self.origin))
    }

    fn instant_at(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Why [`Limiter::try_acquire`] did not reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAcquireError {
    /// The cost does not fit now, or others are waiting first.
    #[error("the request would have to wait")]
    WouldWait,
    /// The cost can never fit: see [`Error::RequestTooLarge`].
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

/// An acquisition through the shared store: async round trips, boxed off the local path.
#[cfg(feature = "redis")]
type SharedAcquire = Pin<Box<dyn Future<Output = Result<Reservation, Error>> + Send>>;

/// The future returned by [`Limiter::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    shared: Option<Arc<Shared>>,
    cost: Cost,
    /// The [`Priority`] lane we wait in.
    lane: usize,
    /// Our place in the lane, once we had to wait.
    id: Option<u64>,
    /// Only the waiter that goes next sleeps, until its cost fits.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The whole acquisition when the state lives in Redis (async round trips).
    #[cfg(feature = "redis")]
    shared_store: Option<SharedAcquire>,
}

impl Future for Acquire {
    type Output = Result<Reservation, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        #[cfg(feature = "redis")]
        if let Some(shared_store) = &mut this.shared_store {
            return shared_store.as_mut().poll(cx);
        }
        let (cost, lane) = (this.cost, this.lane);
        loop {
            let shared = this
                .shared
                .as_deref()
                .expect("`Acquire` polled after it completed");
            let now = shared.now();
            let mut state = shared.lock();
            let id = match this.id {
                Some(id) => id,
                None => {
                    if state.waiting == 0 {
                        // Nobody waiting: try to go straight through.
                        match state.try_admit(&cost, now) {
                            Gate::Admit(mark) => {
                                drop(state);
                                return Poll::Ready(Ok(this.complete(mark)));
                            }
                            Gate::TooLarge(t) => {
                                drop(state);
                                this.shared = None;
                                return Poll::Ready(Err(t.into()));
                            }
                            Gate::Wait(_) => {}
                        }
                    } else if let Some(t) = state.oversized(&cost) {
                        drop(state);
                        this.shared = None;
                        return Poll::Ready(Err(t.into()));
                    }
                    let next_before = state.next_waiter();
                    let id = state.enqueue(lane, None);
                    this.id = Some(id);
                    // Arriving in an empty lane can hand the turn to another lane's head (one
                    // whose share came due while a lane above it waited): wake it.
                    let next_after = state.next_waiter();
                    if next_after != next_before && next_after != Some((lane, id)) {
                        wake(state.head_waker());
                    }
                    id
                }
            };
            let position = state
                .position(lane, id)
                .expect("a waiter is queued until it leaves");
            if position > 0 || state.next_lane() != Some(lane) {
                state.lanes[lane][position].waker = Some(cx.waker().clone());
                // Not next: whoever is next keeps the only timer.
                this.sleep = None;
                return Poll::Pending;
            }
            let gate = state.try_admit(&cost, now);
            if let Gate::Wait(until) = gate {
                state.lanes[lane][0].waker = Some(cx.waker().clone());
                drop(state);
                let Some(until) = until else {
                    // Only a released slot can let us in; its release wakes us.
                    this.sleep = None;
                    return Poll::Pending;
                };
                let deadline = shared.instant_at(until);
                let sleep = match &mut this.sleep {
                    Some(sleep) => {
                        if sleep.deadline() != deadline {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    None => this
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // The deadline passed already: look again.
                continue;
            }
            // Admitted or failed: either way we leave the queue, and the next waiter may go.
            state.remove(lane, 0);
            if let Gate::Admit(_) = gate {
                let State { turns, lanes, .. } = &mut *state;
                turns.admitted_from(lanes, lane);
            }
            let next = state.head_waker();
            drop(state);
            wake(next);
            this.id = None;
            return Poll::Ready(match gate {
                Gate::Admit(mark) => Ok(this.complete(mark)),
                Gate::TooLarge(t) => {
                    this.shared = None;
                    Err(t.into())
                }
                Gate::Wait(_) => unreachable!("a waiting gate keeps the waiter queued"),
            });
        }
    }
}

impl Acquire {
    fn complete(&mut self, mark: Mark) -> Reservation {
        let shared = self.shared.take().expect("completes once");
        Reservation::new(shared, self.cost, Some(mark))
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let (Some(shared), Some(id)) = (self.shared.take(), self.id) else {
            return;
        };
        let waker = {
            let mut state = shared.lock();
            let next_before = state.next_waiter();
            match state.position(self.lane, id) {
                Some(position) => {
                    state.remove(self.lane, position);
                    // Leaving can hand the next turn to another waiter: wake it.
                    if state.next_waiter() != next_before {
                        state.head_waker()
                    } else {
                        None
                    }
                }
                None => None,
            }
        };
        wake(waker);
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("cost", &self.cost)
            .field("priority", &Priority::ALL[self.lane])
            .field("queued", &self.id.is_some())
            .finish()
    }
}
