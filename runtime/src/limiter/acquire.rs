//! The future a caller awaits for its turn: it queues in its lane (in its tenant's queue), keeps
//! the only timer while it is next, and leaves the queue (waking whoever goes next) when it is
//! admitted or dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Sleep;

use super::gcra::Mark;
use super::lanes::Priority;
use super::reservation::Reservation;
use super::state::{wake, Gate, Shared};
use super::tenants::Key;
use crate::units::cost::Cost;
use crate::units::error::Error;

/// An acquisition through a shared store: async round trips, boxed off the local path.
pub type SharedAcquire = Pin<Box<dyn Future<Output = Result<Reservation, Error>> + Send>>;

/// The future returned by [`Limiter::acquire`](super::Limiter::acquire).
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    shared: Option<Arc<Shared>>,
    cost: Cost,
    /// The [`Priority`] lane we wait in.
    lane: usize,
    /// Who the call is for (`None`: no tenant).
    tenant: Key,
    /// Our place in the lane, once we had to wait.
    id: Option<u64>,
    /// Only the waiter that goes next sleeps, until its cost fits.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The whole acquisition when the state lives in a shared store (async round trips).
    shared_store: Option<SharedAcquire>,
}

impl Acquire {
    /// Waits in `lane` of the local queue.
    pub(super) fn local(shared: Arc<Shared>, cost: Cost, lane: usize, tenant: Key) -> Self {
        Acquire {
            shared: Some(shared),
            cost,
            lane,
            tenant,
            id: None,
            sleep: None,
            shared_store: None,
        }
    }

    /// Runs `acquisition` on a shared store instead.
    pub(super) fn through_store(acquisition: SharedAcquire, cost: Cost, lane: usize) -> Self {
        Acquire {
            shared: None,
            cost,
            lane,
            tenant: None,
            id: None,
            sleep: None,
            shared_store: Some(acquisition),
        }
    }
}

impl Future for Acquire {
    type Output = Result<Reservation, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
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
                        match state.try_admit_for(&cost, &this.tenant, now) {
                            Gate::Admit(mark, tracked) => {
                                drop(state);
                                return Poll::Ready(Ok(this.complete(mark, tracked)));
                            }
                            Gate::TooLarge(t) => {
                                drop(state);
                                this.shared = None;
                                return Poll::Ready(Err(t.into()));
                            }
                            Gate::Wait(_) => {}
                        }
                    } else if let Some(t) = state.oversized_for(&cost, &this.tenant, now) {
                        drop(state);
                        this.shared = None;
                        return Poll::Ready(Err(t.into()));
                    }
                    let next_before = state.next_waiter(now);
                    let id = state.enqueue(lane, &this.tenant, cost, now);
                    this.id = Some(id);
                    // Arriving can hand the turn to another waiter (a lane's head whose share
                    // came due while a lane above it waited): wake it.
                    let next_after = state.next_waiter(now);
                    if next_after != next_before && next_after != Some((lane, id)) {
                        wake(state.head_waker(now));
                    }
                    id
                }
            };
            if state.next_waiter(now) != Some((lane, id)) {
                state.set_waker(lane, &this.tenant, id, cx.waker());
                // Not next: whoever is next keeps the only timer. If we kept it, time has
                // handed the turn on (a cap refilled): wake the one it went to.
                if this.sleep.take().is_some() {
                    wake(state.head_waker(now));
                }
                return Poll::Pending;
            }
            let gate = state.try_admit_for(&cost, &this.tenant, now);
            if let Gate::Wait(until) = gate {
                state.set_waker(lane, &this.tenant, id, cx.waker());
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
            let admitted = matches!(gate, Gate::Admit(..));
            state.leave(lane, &this.tenant, id, admitted, now);
            let next = state.head_waker(now);
            drop(state);
            wake(next);
            this.id = None;
            return Poll::Ready(match gate {
                Gate::Admit(mark, tracked) => Ok(this.complete(mark, tracked)),
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
    fn complete(&mut self, mark: Mark, tracked: bool) -> Reservation {
        let shared = self.shared.take().expect("completes once");
        Reservation::new(shared, self.cost, Some(mark)).for_tenant(self.tenant.take(), tracked)
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let (Some(shared), Some(id)) = (self.shared.take(), self.id) else {
            return;
        };
        let waker = {
            let now = shared.now();
            let mut state = shared.lock();
            let next_before = state.next_waiter(now);
            state.leave(self.lane, &self.tenant, id, false, now);
            // Leaving can hand the next turn to another waiter: wake it.
            if state.next_waiter(now) != next_before {
                state.head_waker(now)
            } else {
                None
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
            .field("tenant", &self.tenant)
            .field("queued", &self.id.is_some())
            .finish()
    }
}
