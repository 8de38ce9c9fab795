//! The pool's own queue: FIFO per priority lane across every deployment, so that the call
//! that arrived first is routed first, whatever deployment it fits.
//!
//! Only the waiter whose turn it is routes (the *head*); the others sleep on a notification of
//! their own, and the head is the only one a change in the pool (a release, a hold, a breaker)
//! wakes. A waiter that arrives with a better claim (a higher lane, or a lane whose share came
//! due) makes the head give its turn back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::limiter::lanes::{LaneTurns, LANES};
use crate::sync::Locked;

/// The waiters of one pool, by lane.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    lanes: [VecDeque<Waiter>; LANES],
    turns: LaneTurns,
    /// The waiter routing now, if any: it keeps the turn until it is admitted, leaves, or
    /// gives the turn to a better claim.
    active: Option<u64>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    wake: Arc<Notify>,
}

/// A place in the queue; dropping it leaves the queue and hands the turn on.
#[derive(Debug)]
pub(super) struct Ticket {
    queue: Arc<Queue>,
    lane: usize,
    id: u64,
    /// Notified when this waiter may take the turn, or, while it has the turn, when the pool
    /// changed.
    pub(super) wake: Arc<Notify>,
    admitted: bool,
}

impl Queue {
    pub(super) fn new() -> Self {
        Queue {
            state: Mutex::new(State {
                lanes: Default::default(),
                turns: LaneTurns::new(),
                active: None,
                next_id: 0,
            }),
        }
    }

    /// Joins `lane`'s tail.
    pub(super) fn join(self: &Arc<Self>, lane: usize) -> Ticket {
        let wake = Arc::new(Notify::new());
        let mut state = self.state.locked();
        let id = state.next_id;
        state.next_id += 1;
        let State { turns, lanes, .. } = &mut *state;
        turns.arriving(lanes, lane);
        state.lanes[lane].push_back(Waiter {
            id,
            wake: Arc::clone(&wake),
        });
        // A better claim than the active waiter's: ask it to give the turn back.
        if let Some(active) = state.active.filter(|&active| state.next() != Some(active)) {
            state.notify(active);
        }
        drop(state);
        Ticket {
            queue: Arc::clone(self),
            lane,
            id,
            wake,
            admitted: false,
        }
    }

    /// Wakes the waiter routing now (the pool changed: it may route elsewhere).
    pub(super) fn wake_active(&self) {
        let state = self.state.locked();
        if let Some(active) = state.active {
            state.notify(active);
        }
    }
}

impl State {
    /// The id of the waiter whose turn it is.
    fn next(&self) -> Option<u64> {
        let lane = self.turns.next(&self.lanes)?;
        self.lanes[lane].front().map(|w| w.id)
    }

    fn notify(&self, id: u64) {
        if let Some(waiter) = self.lanes.iter().flatten().find(|w| w.id == id) {
            waiter.wake.notify_one();
        }
    }

    /// Hands the turn to whoever is next, if nobody holds it.
    fn pass_turn(&mut self) {
        if self.active.is_none() {
            if let Some(next) = self.next() {
                self.notify(next);
            }
        }
    }
}

impl Ticket {
    /// Takes the turn if it is this waiter's: true when it now routes.
    pub(super) fn take_turn(&self) -> bool {
        let mut state = self.queue.state.locked();
        if state.active == Some(self.id) {
            return true;
        }
        if state.active.is_none() && state.next() == Some(self.id) {
            state.active = Some(self.id);
            return true;
        }
        false
    }

    /// While routing: whether a better claim arrived, in which case the turn is given back
    /// (and handed to it) and this waiter waits again.
    pub(super) fn yield_to_better_claim(&self) -> bool {
        let mut state = self.queue.state.locked();
        if state.active != Some(self.id) || state.next() == Some(self.id) {
            return false;
        }
        state.active = None;
        state.pass_turn();
        true
    }

    /// Admitted on a deployment: counts the admission toward the lanes' shares.
    pub(super) fn admitted(mut self) {
        self.admitted = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.queue.state.locked();
        let lane = self.lane;
        let Some(position) = state.lanes[lane].iter().position(|w| w.id == self.id) else {
            return;
        };
        state.lanes[lane].remove(position);
        if self.admitted {
            let State { turns, lanes, .. } = &mut *state;
            turns.admitted_from(lanes, lane);
        }
        if state.active == Some(self.id) {
            state.active = None;
        }
        state.pass_turn();
    }
}
