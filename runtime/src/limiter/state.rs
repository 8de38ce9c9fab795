//! The queue and buckets of one limiter, behind one lock: who waits in which lane and for
//! which tenant, what is charged, and what stands between a cost and its admission.

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::gcra::{duration_ns, Buckets, Decision, Mark};
use super::lanes::{LaneTurns, LANES};
use super::tenants::{idle_verdict, Cap, CapCheck, Head, Key, Lane, Tenants, Waiter};
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

/// The first dimension of a tenant's cap that `cost` can never fit.
fn cap_oversized(cap: &Cap, cost: &Cost) -> Option<TooLarge> {
    oversized_in(cap.concurrency, &cap.buckets, cost)
}

/// The first dimension that `cost` can never fit under an in-flight cap of `concurrency` and
/// `buckets`.
fn oversized_in(concurrency: Option<u64>, buckets: &Buckets, cost: &Cost) -> Option<TooLarge> {
    let requests = u64::from(cost.requests);
    if let Some(limit) = concurrency.filter(|limit| requests > *limit) {
        return Some(TooLarge {
            dimension: Dimension::Concurrency,
            requested: requests,
            capacity: limit,
        });
    }
    match buckets.oversized(cost) {
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
    /// One queue per [`Priority`](super::Priority) lane, highest first: its tenants' heads in
    /// the order they go (see [`tenants`](super::tenants)).
    pub(super) lanes: [Lane; LANES],
    /// Every tenant's waiters, turns and caps.
    pub(super) tenants: Tenants,
    /// Which lane goes next.
    pub(super) turns: LaneTurns,
    /// Waiters in all lanes.
    pub(super) waiting: usize,
    pub(super) next_id: u64,
}

/// What stands between a cost and its admission.
pub(super) enum Gate {
    /// Charged; where the buckets stood just after, and whether the tenant's cap was charged
    /// too (its release must then give it back).
    Admit(Mark, bool),
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
            Gate::Admit(mark, false)
        }
    }

    /// Admits `cost` for `key` (charging the family and the tenant's cap) if both fit now.
    #[inline]
    pub(super) fn try_admit_for(&mut self, cost: &Cost, key: &Key, now: u64) -> Gate {
        if key.is_none() || !self.tenants.capped {
            return self.try_admit(cost, now);
        }
        let family = self.family_gate(cost, now);
        if let Some(Gate::TooLarge(t)) = &family {
            return Gate::TooLarge(*t);
        }
        let tenant = self.tenants.entry(key, now);
        let cap_wait = match tenant.check_cap(cost, now) {
            CapCheck::Fits => None,
            CapCheck::Wait(until) => Some(until),
            CapCheck::TooLarge {
                dimension,
                requested,
                capacity,
            } => {
                self.tenants.forget_if_idle(key, now);
                return Gate::TooLarge(TooLarge {
                    dimension,
                    requested,
                    capacity,
                });
            }
        };
        match (family, cap_wait) {
            (Some(Gate::TooLarge(t)), _) => Gate::TooLarge(t),
            (Some(Gate::Wait(Some(a))), Some(Some(b))) => Gate::Wait(Some(a.max(b))),
            (Some(Gate::Wait(Some(a))), _) | (_, Some(Some(a))) => Gate::Wait(Some(a)),
            (Some(_), _) | (_, Some(None)) => Gate::Wait(None),
            (None, None) => {
                let requests = u64::from(cost.requests);
                let tracked = match &mut tenant.cap {
                    Some(cap) => {
                        cap.buckets.charge(cost, now);
                        tenant.in_flight += requests;
                        true
                    }
                    None => false,
                };
                let mark = self.buckets.charge(cost, now);
                self.in_flight += requests;
                if !tracked {
                    // Nothing to keep for an uncapped tenant that went straight through.
                    self.tenants.forget_if_idle(key, now);
                }
                Gate::Admit(mark, tracked)
            }
        }
    }

    /// What stands between `cost` and the family's admission now (`None`: it fits), charging
    /// nothing.
    fn family_gate(&self, cost: &Cost, now: u64) -> Option<Gate> {
        let requests = u64::from(cost.requests);
        let concurrency = self.quota.concurrency.map(u64::from);
        if let Some(limit) = concurrency.filter(|limit| requests > *limit) {
            return Some(Gate::TooLarge(TooLarge {
                dimension: Dimension::Concurrency,
                requested: requests,
                capacity: limit,
            }));
        }
        let ready = match self.buckets.decide(cost, now) {
            Decision::TooLarge {
                dimension,
                requested,
                capacity,
            } => {
                return Some(Gate::TooLarge(TooLarge {
                    dimension,
                    requested,
                    capacity,
                }))
            }
            Decision::Admit => now,
            Decision::WaitUntil(at) => at,
        }
        .max(self.held_until);
        if ready > now {
            Some(Gate::Wait(Some(ready)))
        } else if concurrency.is_some_and(|limit| self.in_flight + requests > limit) {
            Some(Gate::Wait(None))
        } else {
            None
        }
    }

    /// The first dimension `cost` can never fit, checked on arrival so that a request behind
    /// a queue fails at once instead of when it reaches the head.
    pub(super) fn oversized(&self, cost: &Cost) -> Option<TooLarge> {
        oversized_in(self.quota.concurrency.map(u64::from), &self.buckets, cost)
    }

    /// [`oversized`](State::oversized), the tenant's cap included.
    pub(super) fn oversized_for(&mut self, cost: &Cost, key: &Key, now: u64) -> Option<TooLarge> {
        if let Some(t) = self.oversized(cost) {
            return Some(t);
        }
        if key.is_none() || !self.tenants.capped {
            return None;
        }
        let found = self
            .tenants
            .entry(key, now)
            .cap
            .as_deref()
            .and_then(|cap| cap_oversized(cap, cost));
        // Called on arrival: the waiter queues next, or fails and leaves nothing behind.
        if found.is_some() {
            self.tenants.forget_if_idle(key, now);
        }
        found
    }

    /// Which lanes have a head that may go.
    #[inline]
    fn ready_lanes(&self) -> [bool; LANES] {
        std::array::from_fn(|lane| !self.lanes[lane].ready.is_empty())
    }

    /// Which lanes have waiters.
    #[inline]
    fn waiting_lanes(&self) -> [bool; LANES] {
        std::array::from_fn(|lane| self.lanes[lane].waiting > 0)
    }

    /// Brings the turns up to `now`: heads whose caps have refilled come back, and heads their
    /// caps hold out leave, in the order they would go, until the next head may go.
    fn refresh(&mut self, now: u64) {
        if self.waiting == 0 {
            return;
        }
        for lane in 0..LANES {
            while let Some((&(until, id), _)) = self.lanes[lane].capped.first_key_value() {
                if until > now {
                    break;
                }
                let (_, key) = self.lanes[lane].capped.pop_first().expect("just seen");
                self.requeue(lane, key, id);
            }
        }
        if !self.tenants.capped {
            return;
        }
        while let Some(lane) = self.turns.next_of(self.ready_lanes()) {
            let ((tag, id), key) = self.lanes[lane]
                .ready
                .first()
                .expect("a ready lane has a head");
            let tenant = self
                .tenants
                .get(key)
                .expect("a tenant with waiters is kept");
            let head = tenant.queues[lane].front().expect("a head is queued");
            let CapCheck::Wait(until) = tenant.check_cap(&head.cost, now) else {
                return;
            };
            let until = until.unwrap_or(u64::MAX);
            let key = self.lanes[lane]
                .ready
                .remove(&(tag, id))
                .expect("just seen");
            self.tenants.get_mut(&key).expect("kept").heads[lane].capped = Some(until);
            self.lanes[lane].capped.insert((until, id), key);
        }
    }

    /// Puts a capped head back among those that may go, with its tag.
    fn requeue(&mut self, lane: usize, key: Key, id: u64) {
        let tenant = self.tenants.get_mut(&key).expect("kept");
        tenant.heads[lane].capped = None;
        let tag = tenant.heads[lane].tag;
        self.lanes[lane].ready.insert((tag, id), key);
    }

    /// A call of `key` charged on its cap ended: heads waiting for one of its calls to end
    /// may go again.
    pub(super) fn tenant_released(
        &mut self,
        key: &Key,
        from: &Cost,
        to: &Cost,
        charged_at: Option<u64>,
        now: u64,
    ) {
        let Some(name) = key else {
            return;
        };
        let Some(tenant) = self.tenants.map.get_mut(name) else {
            return;
        };
        tenant.in_flight -= u64::from(from.requests);
        if let Some(cap) = &mut tenant.cap {
            if from != to {
                cap.buckets.adjust_charged_at(from, to, charged_at, now);
            }
        }
        let mut slots = [None; LANES];
        for (lane, slot) in slots.iter_mut().enumerate() {
            if tenant.heads[lane].capped == Some(u64::MAX) {
                *slot = tenant.queues[lane].front().map(|w| w.id);
            }
        }
        let verdict = idle_verdict(tenant, now, true);
        for (lane, id) in slots.into_iter().enumerate() {
            let Some(id) = id else { continue };
            if let Some(key) = self.lanes[lane].capped.remove(&(u64::MAX, id)) {
                self.requeue(lane, key, id);
            }
        }
        self.tenants.settle_idle(name, now, verdict);
    }

    /// The waiter that goes next at `now`: its lane and id. When every head sits out its cap,
    /// the one whose cap refills first (it keeps the timer).
    pub(super) fn next_waiter(&mut self, now: u64) -> Option<(usize, u64)> {
        if self.waiting == 0 {
            return None;
        }
        self.refresh(now);
        self.peek()
    }

    fn peek(&self) -> Option<(usize, u64)> {
        match self.turns.next_of(self.ready_lanes()) {
            Some(lane) => {
                let ((_, id), _) = self.lanes[lane].ready.first()?;
                Some((lane, id))
            }
            None => (0..LANES)
                .filter_map(|lane| {
                    let (&(until, id), _) = self.lanes[lane].capped.first_key_value()?;
                    Some((until, id, lane))
                })
                .min()
                .map(|(_, id, lane)| (lane, id)),
        }
    }

    /// The tenant of the waiter `id` at the head of `lane`.
    fn head_key(&self, lane: usize, id: u64) -> Option<&Key> {
        let lane = &self.lanes[lane];
        lane.ready
            .first()
            .filter(|((_, head), _)| *head == id)
            .map(|(_, key)| key)
            .or_else(|| {
                lane.capped
                    .iter()
                    .find(|((_, head), _)| *head == id)
                    .map(|(_, key)| key)
            })
    }

    /// The waker of the waiter that goes next, to let it look again.
    #[inline]
    pub(super) fn head_waker(&mut self, now: u64) -> Option<Waker> {
        let (lane, id) = self.next_waiter(now)?;
        let key = self.head_key(lane, id)?.clone();
        let tenant = self.tenants.get_mut(&key)?;
        tenant.queues[lane].front_mut().and_then(|w| w.waker.take())
    }

    /// Queues a waiter for `cost` in `lane` for `key`; returns its id.
    pub(super) fn enqueue(&mut self, lane: usize, key: &Key, cost: Cost, now: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.turns.arriving_in(self.lanes[lane].waiting == 0, lane);
        let virtual_time = self.lanes[lane].virtual_time;
        let tenant = self.tenants.entry(key, now);
        let queue = &mut tenant.queues[lane];
        queue.push_back(Waiter {
            id,
            cost,
            waker: None,
        });
        if queue.len() == 1 {
            let tag = virtual_time.max(tenant.finish[lane]);
            tenant.heads[lane] = Head { tag, capped: None };
            self.lanes[lane].ready.insert((tag, id), key.clone());
        }
        self.lanes[lane].waiting += 1;
        self.waiting += 1;
        id
    }

    /// Takes waiter `id` of `key` out of `lane`: admitted (its head's turn is counted) or gone.
    pub(super) fn leave(&mut self, lane: usize, key: &Key, id: u64, admitted: bool, now: u64) {
        let Some(position) = self.position(lane, key, id) else {
            return;
        };
        let Lane {
            ready,
            capped,
            virtual_time,
            waiting,
        } = &mut self.lanes[lane];
        let tenant = self
            .tenants
            .get_mut(key)
            .expect("a tenant with waiters is kept");
        let waiter = tenant.queues[lane].remove(position).expect("found above");
        if position == 0 {
            let head = tenant.heads[lane];
            let entry = match head.capped {
                Some(until) => capped.remove(&(until, id)),
                None => ready.remove(&(head.tag, id)),
            };
            let key = entry.expect("a head is in the turns");
            if admitted {
                *virtual_time = (*virtual_time).max(head.tag);
                tenant.finish[lane] = head.tag + tenant.span(&waiter.cost);
            }
            if let Some(next) = tenant.queues[lane].front() {
                let tag = (*virtual_time).max(tenant.finish[lane]);
                tenant.heads[lane] = Head { tag, capped: None };
                ready.insert((tag, next.id), key);
            }
        }
        *waiting -= 1;
        self.waiting -= 1;
        if admitted {
            let waiting = self.waiting_lanes();
            self.turns.admitted_from_of(waiting, lane);
        }
        self.tenants.forget_if_idle(key, now);
    }

    /// Where waiter `id` of `key` stands in its tenant's queue of `lane`.
    pub(super) fn position(&self, lane: usize, key: &Key, id: u64) -> Option<usize> {
        let queue = &self.tenants.get(key)?.queues[lane];
        // Most often the head (the one whose turn it is).
        if queue.front().is_some_and(|w| w.id == id) {
            return Some(0);
        }
        // Ids are handed out in increasing order and each queue keeps arrival order.
        queue.binary_search_by_key(&id, |w| w.id).ok()
    }

    /// Leaves `waker` with waiter `id` of `key` in `lane`.
    pub(super) fn set_waker(&mut self, lane: usize, key: &Key, id: u64, waker: &Waker) {
        let Some(position) = self.position(lane, key, id) else {
            return;
        };
        let tenant = self.tenants.get_mut(key).expect("found above");
        let slot = &mut tenant.queues[lane][position].waker;
        match slot {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
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
