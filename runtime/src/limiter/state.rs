//! The queue and buckets of one limiter, behind one lock: who waits in which lane, what is
//! charged, and what stands between a cost and its admission.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::gcra::{duration_ns, Buckets, Decision, Mark};
use super::lanes::{LaneTurns, LANES};
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

/// What every clone of a [`Limiter`](super::Limiter), its futures and its reservations share.
pub(super) struct Shared {
    pub(super) origin: Instant,
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    pub(super) quota: Quota,
    pub(super) buckets: Buckets,
    pub(super) in_flight: u64,
    /// No admission before this time (ns since origin): set when the server answers 429.
    pub(super) held_until: u64,
    /// One FIFO queue per [`Priority`] lane, highest first.
    pub(super) lanes: [VecDeque<Waiter>; LANES],
    /// Which lane goes next.
    pub(super) turns: LaneTurns,
    /// Waiters in all lanes.
    pub(super) waiting: usize,
    pub(super) next_id: u64,
}

pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) waker: Option<Waker>,
}

/// What stands between a cost and its admission.
pub(super) enum Gate {
    /// Charged; where the buckets stood just after.
    Admit(Mark),
    /// Wait until this time (ns since origin), or for a released slot when `None`.
    Wait(Option<u64>),
    TooLarge(TooLarge),
}

/// A cost that can never fit (kept small: it travels the hot path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TooLarge {
    pub(super) dimension: Dimension,
    pub(super) requested: u64,
    pub(super) capacity: u64,
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
    pub(super) fn try_admit(&mut self, cost: &Cost, now: u64) -> Gate {
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
    pub(super) fn oversized(&self, cost: &Cost) -> Option<TooLarge> {
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
    pub(super) fn next_lane(&self) -> Option<usize> {
        if self.waiting == 0 {
            return None;
        }
        self.turns.next(&self.lanes)
    }

    /// The waiter that goes next: its lane and id.
    pub(super) fn next_waiter(&self) -> Option<(usize, u64)> {
        let lane = self.next_lane()?;
        self.lanes[lane].front().map(|w| (lane, w.id))
    }

    /// The waker of the waiter that goes next, to let it look again.
    #[inline]
    pub(super) fn head_waker(&mut self) -> Option<Waker> {
        let lane = self.next_lane()?;
        self.lanes[lane].front_mut().and_then(|w| w.waker.take())
    }

    pub(super) fn enqueue(&mut self, lane: usize, waker: Option<Waker>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.turns.arriving(&self.lanes, lane);
        self.lanes[lane].push_back(Waiter { id, waker });
        self.waiting += 1;
        id
    }

    pub(super) fn remove(&mut self, lane: usize, position: usize) {
        self.lanes[lane].remove(position);
        self.waiting -= 1;
    }

    pub(super) fn position(&self, lane: usize, id: u64) -> Option<usize> {
        // Ids are handed out in increasing order and each lane keeps arrival order.
        self.lanes[lane].binary_search_by_key(&id, |w| w.id).ok()
    }
}

impl Shared {
    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await point, so a panic elsewhere cannot leave
        // it half-updated: recover from poisoning instead of spreading the panic.
        self.state.locked()
    }

    #[inline]
    pub(super) fn now(&self) -> u64 {
        duration_ns(Instant::now().saturating_duration_since(self.origin))
    }

    pub(super) fn instant_at(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }
}

pub(super) fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}
