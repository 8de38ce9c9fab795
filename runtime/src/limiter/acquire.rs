//! The future a caller awaits for its turn: it queues in its lane, keeps the only timer while
//! it is next, and leaves the queue (waking whoever goes next) when it is admitted or dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Sleep;

use super::gcra::Mark;
use super::lanes::Priority;
use super::reservation::Reservation;
use super::state::{wake, Gate, Shared, State};
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
    /// Our place in the lane, once we had to wait.
    id: Option<u64>,
    /// Only the waiter that goes next sleeps, until its cost fits.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The whole acquisition when the state lives in a shared store (async round trips).
    shared_store: Option<SharedAcquire>,
}

impl Acquire {
    /// Waits in `lane` of the local queue.
    pub(super) fn local(shared: Arc<Shared>, cost: Cost, lane: usize) -> Self {
        Acquire {
            shared: Some(shared),
            cost,
            lane,
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
