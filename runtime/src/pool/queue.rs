//! The pool's own queue: by priority lane, and within a lane by tenant, so that the call whose
//! turn it is routes first, whatever deployment it fits.
//!
//! **Tenants.** Within a lane the pool's calls take turns by tenant exactly as a limiter's do
//! (see `limiter::tenants`): start-time fair queuing on tokens, FIFO within a tenant, a tenant
//! that arrives later tagged with the lane's virtual time *now*, so it goes after at most one
//! admission per tenant already waiting. Calls without a tenant are one more tenant of weight 1:
//! a pool whose calls name no tenant is one FIFO queue per lane, as before tenants existed. A
//! tenant's turns are forgotten as soon as it has no waiter in the lane (as a limiter forgets
//! an uncapped tenant's), so the queue keeps nothing for tenants that are not waiting.
//!
//! **Caps.** A tenant's caps live on each deployment's limiter; the head asks them when it
//! routes. A head whose cap admits it on no deployment now *sits out*: it leaves the turns
//! until its cap refills (or, for a concurrency cap, until the pool changes: a call ended),
//! the next tenant routes meanwhile, and it comes back with its tag, first in line for what
//! it is owed.
//!
//! Only the waiter whose turn it is routes (the *head*); the others sleep on a notification of
//! their own, and the head is the only one a change in the pool (a release, a hold, a breaker)
//! wakes. A waiter that arrives with a better claim (a higher lane, a lane whose share came
//! due, or a smaller tag) makes the head give its turn back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::limiter::lanes::{LaneTurns, LANES};
use crate::limiter::tenants::tokens_span;
use crate::sync::Locked;
use crate::units::tenant::Tenant;

/// A tenant, or `None` for calls made without one.
type Key = Option<Tenant>;

/// Until when a head sits out its tenant's cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SitOut {
    /// When its cap refills enough on some deployment; `None` when no cap can be dated.
    pub(super) until: Option<Instant>,
    /// Whether a call that ends may free it sooner (a concurrency cap is full somewhere).
    pub(super) on_release: bool,
}

/// The waiters of one pool, by lane.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    lanes: [Lane; LANES],
    turns: LaneTurns,
    /// The waiter routing now, if any: it keeps the turn until it is admitted, leaves, sits
    /// out its cap, or gives the turn to a better claim.
    active: Option<u64>,
    next_id: u64,
}

/// One priority lane: its tenants' queues and their heads in the order they go.
#[derive(Debug, Default)]
struct Lane {
    tenants: HashMap<Key, TenantQueue>,
    /// Heads that may route, by (tag, id).
    ready: BTreeMap<(u128, u64), Key>,
    /// Heads sitting out their caps, by id.
    capped: BTreeMap<u64, Key>,
    /// The tag of the lane's last admission.
    virtual_time: u128,
    /// Waiters of every tenant in the lane.
    waiting: usize,
}

/// One tenant's waiters in a lane.
#[derive(Debug)]
struct TenantQueue {
    waiters: VecDeque<Waiter>,
    /// The head's tag.
    tag: u128,
    /// The virtual finish of the tenant's last admission.
    finish: u128,
    weight: u32,
    /// Whether (and until when) the head sits out its cap.
    sitting_out: Option<SitOut>,
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
    key: Key,
    id: u64,
    /// Notified when this waiter may take the turn, or, while it has the turn, when the pool
    /// changed.
    pub(super) wake: Arc<Notify>,
    /// The tokens it was admitted with, once admitted: what its tenant's turn cost.
    admitted: Option<u64>,
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

    /// Joins the tail of `tenant`'s queue in `lane`; `weight` is the tenant's share there.
    pub(super) fn join(
        self: &Arc<Self>,
        lane: usize,
        tenant: Option<&Tenant>,
        weight: u32,
    ) -> Ticket {
        let wake = Arc::new(Notify::new());
        let key = tenant.cloned();
        let mut state = self.state.locked();
        let id = state.next_id;
        state.next_id += 1;
        let was_empty = state.lanes[lane].waiting == 0;
        state.turns.arriving_in(was_empty, lane);
        let queue = &mut state.lanes[lane];
        queue.waiting += 1;
        let waiter = Waiter {
            id,
            wake: Arc::clone(&wake),
        };
        match queue.tenants.get_mut(&key) {
            Some(tenant) => {
                tenant.weight = weight.max(1);
                tenant.waiters.push_back(waiter);
            }
            None => {
                // A newcomer (or a tenant back after its queue emptied) starts at the lane's
                // virtual time.
                let tag = queue.virtual_time;
                queue.ready.insert((tag, id), key.clone());
                queue.tenants.insert(
                    key.clone(),
                    TenantQueue {
                        waiters: VecDeque::from([waiter]),
                        tag,
                        finish: tag,
                        weight: weight.max(1),
                        sitting_out: None,
                    },
                );
            }
        }
        state.claim_turn();
        drop(state);
        Ticket {
            queue: Arc::clone(self),
            lane,
            key,
            id,
            wake,
            admitted: None,
        }
    }

    /// Wakes the waiter routing now (the pool changed: it may route elsewhere), and brings back
    /// the heads sitting out a concurrency cap (a call may have ended).
    pub(super) fn wake_active(&self) {
        let mut state = self.state.locked();
        let mut back = false;
        for lane in &mut state.lanes {
            back |= lane.back_on_release();
        }
        match state.active {
            // It re-routes, or gives the turn to a head that came back with a better claim.
            Some(active) => state.notify(active),
            None if back => state.pass_turn(),
            None => {}
        }
    }
}

impl Lane {
    /// Puts `key`'s head back in the turns with its tag, if it sits out.
    fn back(&mut self, key: &Key) -> bool {
        let Some(tenant) = self.tenants.get_mut(key) else {
            return false;
        };
        if tenant.sitting_out.take().is_none() {
            return false;
        }
        let id = tenant.waiters.front().expect("a queue is never empty").id;
        self.capped.remove(&id);
        self.ready.insert((tenant.tag, id), key.clone());
        true
    }

    /// Brings back every head that sits out a concurrency cap.
    fn back_on_release(&mut self) -> bool {
        let keys: Vec<Key> = self
            .capped
            .values()
            .filter(|key| {
                self.tenants
                    .get(*key)
                    .and_then(|t| t.sitting_out)
                    .is_some_and(|s| s.on_release)
            })
            .cloned()
            .collect();
        let mut any = false;
        for key in keys {
            any |= self.back(&key);
        }
        any
    }
}

impl State {
    /// The id of the waiter whose turn it is.
    fn next(&self) -> Option<u64> {
        let ready: [bool; LANES] = std::array::from_fn(|l| !self.lanes[l].ready.is_empty());
        let lane = self.turns.next_of(ready)?;
        self.lanes[lane].ready.keys().next().map(|&(_, id)| id)
    }

    fn notify(&self, id: u64) {
        let waiter = self
            .lanes
            .iter()
            .flat_map(|lane| lane.tenants.values())
            .find_map(|t| t.waiters.front().filter(|w| w.id == id));
        if let Some(waiter) = waiter {
            waiter.wake.notify_one();
        }
    }

    /// After the turns changed: asks the active waiter to give the turn back if another now
    /// has a better claim, or hands the turn to whoever is next if nobody holds it.
    fn claim_turn(&self) {
        match self.active {
            Some(active) if self.next() != Some(active) => self.notify(active),
            Some(_) => {}
            None => self.pass_turn(),
        }
    }

    /// Hands the turn to whoever is next, if nobody holds it.
    fn pass_turn(&self) {
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

    /// While routing: its tenant's cap admits it nowhere now, so it leaves the turns until
    /// `sit_out` says and the next waiter routes meanwhile.
    pub(super) fn sit_out(&self, sit_out: SitOut) {
        let mut state = self.queue.state.locked();
        if state.active != Some(self.id) {
            return;
        }
        let lane = &mut state.lanes[self.lane];
        let tenant = lane.tenants.get_mut(&self.key).expect("a waiter's tenant");
        lane.ready.remove(&(tenant.tag, self.id));
        lane.capped.insert(self.id, self.key.clone());
        tenant.sitting_out = Some(sit_out);
        state.active = None;
        state.pass_turn();
    }

    /// Whether this waiter sits out its cap now, and until when.
    pub(super) fn sitting_out(&self) -> Option<SitOut> {
        let state = self.queue.state.locked();
        let tenant = state.lanes[self.lane].tenants.get(&self.key)?;
        tenant
            .sitting_out
            .filter(|_| tenant.waiters.front().is_some_and(|w| w.id == self.id))
    }

    /// Its cap has refilled: back in the turns with its tag.
    pub(super) fn back_from_cap(&self) {
        let mut state = self.queue.state.locked();
        if state.lanes[self.lane].back(&self.key) {
            state.claim_turn();
        }
    }

    /// Admitted on a deployment with `tokens`: counts the admission toward the lanes' shares
    /// and the tenant's turns.
    pub(super) fn admitted(mut self, tokens: u64) {
        self.admitted = Some(tokens);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.queue.state.locked();
        let lane = &mut state.lanes[self.lane];
        let Some(tenant) = lane.tenants.get_mut(&self.key) else {
            return;
        };
        let Some(position) = tenant.waiters.iter().position(|w| w.id == self.id) else {
            return;
        };
        tenant.waiters.remove(position);
        lane.waiting -= 1;
        if position == 0 {
            // The head leaves: its tag goes, and the tenant's next waiter (if any) is tagged.
            lane.ready.remove(&(tenant.tag, self.id));
            lane.capped.remove(&self.id);
            tenant.sitting_out = None;
            if let Some(tokens) = self.admitted {
                lane.virtual_time = lane.virtual_time.max(tenant.tag);
                tenant.finish = tenant.tag + tokens_span(tokens, tenant.weight);
            }
            match tenant.waiters.front() {
                Some(next) => {
                    tenant.tag = tenant.finish.max(lane.virtual_time);
                    lane.ready.insert((tenant.tag, next.id), self.key.clone());
                }
                None => {
                    lane.tenants.remove(&self.key);
                }
            }
        }
        if self.admitted.is_some() {
            let ready: [bool; LANES] = std::array::from_fn(|l| !state.lanes[l].ready.is_empty());
            state.turns.admitted_from_of(ready, self.lane);
        }
        if state.active == Some(self.id) {
            state.active = None;
        }
        state.pass_turn();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(queue: &Arc<Queue>, tenant: &str) -> Ticket {
        let tenant = Tenant::from(tenant);
        queue.join(1, Some(&tenant), 1)
    }

    /// Routes the waiter whose turn it is and admits it with `tokens`: its id.
    fn admit_next(tickets: &mut Vec<Ticket>, tokens: u64) -> u64 {
        let i = tickets
            .iter()
            .position(Ticket::take_turn)
            .expect("someone's turn");
        let ticket = tickets.remove(i);
        let id = ticket.id;
        ticket.admitted(tokens);
        id
    }

    #[test]
    fn without_tenants_the_queue_is_fifo() {
        let queue = Arc::new(Queue::new());
        let mut tickets: Vec<Ticket> = (0..5).map(|_| queue.join(1, None, 1)).collect();
        let order: Vec<u64> = (0..5).map(|_| admit_next(&mut tickets, 100)).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_late_tenant_goes_after_one_admission_of_the_backlogged_one() {
        let queue = Arc::new(Queue::new());
        let mut tickets: Vec<Ticket> = (0..10).map(|_| join(&queue, "bulk")).collect();
        assert_eq!(admit_next(&mut tickets, 1_000), 0);
        assert_eq!(admit_next(&mut tickets, 1_000), 1);
        tickets.push(join(&queue, "late")); // id 10
        tickets.push(join(&queue, "late")); // id 11
        assert_eq!(admit_next(&mut tickets, 1_000), 10);
        // Then the two alternate on equal tokens (a tie goes to the earlier id).
        assert_eq!(admit_next(&mut tickets, 1_000), 2);
        assert_eq!(admit_next(&mut tickets, 1_000), 11);
        assert_eq!(admit_next(&mut tickets, 1_000), 3);
    }

    #[test]
    fn a_head_sitting_out_its_cap_lets_the_next_tenant_go_and_comes_back_first() {
        let queue = Arc::new(Queue::new());
        let capped = join(&queue, "capped"); // id 0
        let mut others: Vec<Ticket> = (0..3).map(|_| join(&queue, "other")).collect();
        assert!(capped.take_turn());
        let sit_out = SitOut {
            until: None,
            on_release: true,
        };
        capped.sit_out(sit_out);
        assert_eq!(capped.sitting_out(), Some(sit_out));
        assert!(!capped.take_turn());
        assert_eq!(admit_next(&mut others, 1_000), 1);
        // A call ended: it is back, with the smallest tag.
        queue.wake_active();
        assert_eq!(capped.sitting_out(), None);
        assert!(capped.take_turn());
        assert!(!others.iter().any(Ticket::take_turn));
    }
}
