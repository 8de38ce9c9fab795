//! One process's reservations on one shared family, sent to Redis in batches.
//!
//! Waiters queue here by [`Priority`] lane, and within a lane by tenant: each tenant's in
//! arrival order, the tenants taking turns by start-time fair queuing on tokens, as the local
//! limiter's lanes do (see `limiter/tenants.rs`; calls without a tenant are one more tenant of
//! weight 1, so with no tenants a lane is one FIFO queue). One sender task takes the queue's
//! head in turn order, up to [`MAX_BATCH`] at a time, and reserves them in one script call
//! (`batch` mode), which stops after the first request that has to wait: so this process has
//! at most one request scheduled ahead in Redis, and the sender schedules nothing more ahead
//! until that one's start (see `sender.rs`). A later waiter of a higher lane therefore goes
//! before the ones still queued here, and processes interleave fairly. Under no pressure,
//! everything that queued while one call was on the wire goes in the next call: one round trip
//! for many reservations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::limiter::lanes::{LaneTurns, Priority, LANES};
use crate::limiter::tenants::span;
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::Quota;
use crate::units::tenant::Tenant;

use super::connection::Unavailable;
use super::tenants::TenantCap;
use crate::sync::Locked;

/// At most this many reservations in one script call: bounds the call's size and its time on
/// the server (other processes' calls wait behind it).
pub(crate) const MAX_BATCH: usize = 64;

/// While no concurrency slot is free, look again at least this often: a slot freed by
/// another process sends no signal here.
pub(super) const SLOT_POLL: Duration = Duration::from_millis(20);

/// What the sender tells a waiter.
pub(crate) enum Outcome {
    /// Reserved in Redis.
    Admitted(Admission),
    /// `dimension`, of `capacity`, can never fit the request.
    TooLarge { dimension: Dimension, capacity: u64 },
    /// Redis did not answer, or refused the call.
    Unavailable(Unavailable),
}

/// A reservation charged in Redis, on its way to its waiter: given back when dropped before
/// the waiter [claims](Admission::claim) it (a waiter gone while the call was on the wire, or
/// after the answer arrived but before it read it).
pub(crate) struct Admission {
    /// How long to sleep before the request goes.
    pub(crate) wait: Duration,
    /// When it starts, in µs since the epoch on the server's clock.
    pub(crate) start_us: u64,
    /// The limits it was charged under: its settle is computed with them.
    pub(crate) quota: Arc<Quota>,
    /// Each bucket's units in use just after its charge, at its start.
    pub(crate) marks: Vec<(Dimension, u64)>,
    refund: Option<Box<dyn FnOnce() + Send>>,
}

impl Admission {
    pub(crate) fn new(
        wait: Duration,
        start_us: u64,
        quota: Arc<Quota>,
        marks: Vec<(Dimension, u64)>,
        refund: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Admission {
            wait,
            start_us,
            quota,
            marks,
            refund: Some(refund),
        }
    }

    /// Taken by its waiter, who gives it back from now on (its reservation does).
    pub(crate) fn claim(mut self) -> Self {
        self.refund = None;
        self
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(refund) = self.refund.take() {
            refund();
        }
    }
}

/// A waiter's request, queued for the sender.
pub(crate) struct Pending {
    pub(crate) cost: Cost,
    pub(crate) lease_id: String,
    pub(crate) reply: oneshot::Sender<Outcome>,
    /// Who the call is for (`None`: no tenant), and its weight in the fair share.
    pub(crate) tenant: Option<Tenant>,
    pub(crate) weight: u32,
    /// The tenant's cap, charged in Redis with the family's buckets.
    pub(crate) cap: Option<Arc<TenantCap>>,
    /// Its turn, once the sender took it: put back, it gets the same turn again.
    pub(crate) turn: Option<Turn>,
}

/// A turn taken from a lane, and what the lane was before it (restored when it is put back).
pub(crate) struct Turn {
    head: (u128, u64),
    finish_before: u128,
    virtual_before: u128,
}

/// One tenant's waiters in a lane.
#[derive(Default)]
struct TenantQueue {
    waiting: VecDeque<Pending>,
    /// The virtual finish of the tenant's last turn.
    finish: u128,
    /// Its head's place among the lane's heads: (tag, arrival).
    head: (u128, u64),
    /// Until when its cap in Redis holds it out of the turns.
    capped: Option<Instant>,
}

/// One lane: its tenants' queues, their heads in the order they go.
#[derive(Default)]
struct FairLane {
    tenants: HashMap<Option<Tenant>, TenantQueue>,
    ready: BTreeMap<(u128, u64), Option<Tenant>>,
    /// Heads whose tenants sit out their caps, by (until, arrival).
    capped: BTreeMap<(Instant, u64), Option<Tenant>>,
    virtual_time: u128,
    arrivals: u64,
    len: usize,
}

impl FairLane {
    fn push_back(&mut self, pending: Pending) {
        let virtual_time = self.virtual_time;
        let queue = self.tenants.entry(pending.tenant.clone()).or_default();
        if queue.waiting.is_empty() {
            self.arrivals += 1;
            queue.head = (virtual_time.max(queue.finish), self.arrivals);
            self.ready.insert(queue.head, pending.tenant.clone());
        }
        queue.waiting.push_back(pending);
        self.len += 1;
    }

    /// The head whose turn it is; the tenant's next waiter becomes its head.
    fn pop_front(&mut self) -> Option<Pending> {
        let (head, tenant) = self.ready.pop_first()?;
        let queue = self
            .tenants
            .get_mut(&tenant)
            .expect("a ready head has a queue");
        let mut pending = queue.waiting.pop_front().expect("a ready head waits");
        pending.turn = Some(Turn {
            head,
            finish_before: queue.finish,
            virtual_before: self.virtual_time,
        });
        self.virtual_time = self.virtual_time.max(head.0);
        queue.finish = head.0 + span(&pending.cost, pending.weight);
        if queue.waiting.is_empty() {
            // A tenant that returns starts fresh, tagged as any newcomer.
            self.tenants.remove(&tenant);
        } else {
            self.arrivals += 1;
            queue.head = (self.virtual_time.max(queue.finish), self.arrivals);
            self.ready.insert(queue.head, tenant);
        }
        self.len -= 1;
        Some(pending)
    }

    /// Puts back a waiter taken by [`pop_front`](FairLane::pop_front) (the last taken first):
    /// the lane is as it was before its turn.
    fn push_front(&mut self, mut pending: Pending) {
        let turn = pending.turn.take();
        if let Some(turn) = &turn {
            self.virtual_time = turn.virtual_before;
        }
        self.restore(pending, turn, None);
    }

    /// Puts back a waiter taken by [`pop_front`](FairLane::pop_front) whose tenant's cap has no
    /// room until `until` (of those taken, the last taken first): its tenant keeps its turn and
    /// sits out until then, while the others go.
    fn sit_out(&mut self, mut pending: Pending, until: Instant) {
        let turn = pending.turn.take();
        self.restore(pending, turn, Some(until));
    }

    /// Makes `pending` its tenant's head again, with its `turn`'s place, ready or sitting out
    /// its cap until `capped`.
    fn restore(&mut self, pending: Pending, turn: Option<Turn>, capped: Option<Instant>) {
        let queue = self.tenants.entry(pending.tenant.clone()).or_default();
        if !queue.waiting.is_empty() {
            match queue.capped {
                Some(until) => self.capped.remove(&(until, queue.head.1)),
                None => self.ready.remove(&queue.head),
            };
        }
        queue.head = match turn {
            Some(turn) => {
                queue.finish = turn.finish_before;
                turn.head
            }
            None => (self.virtual_time, 0),
        };
        // A tenant sitting out stays out until the latest `until` it was told.
        queue.capped = match (capped, queue.capped.filter(|_| !queue.waiting.is_empty())) {
            (Some(until), Some(before)) => Some(until.max(before)),
            (until, _) => until,
        };
        match queue.capped {
            Some(until) => self
                .capped
                .insert((until, queue.head.1), pending.tenant.clone()),
            None => self.ready.insert(queue.head, pending.tenant.clone()),
        };
        queue.waiting.push_front(pending);
        self.len += 1;
    }

    /// Brings back the tenants whose caps have room again by `now`; the earliest time one
    /// still sitting out comes back.
    fn refresh(&mut self, now: Instant) -> Option<Instant> {
        while let Some((&(until, arrival), _)) = self.capped.first_key_value() {
            if until > now {
                return Some(until);
            }
            let (_, tenant) = self.capped.pop_first().expect("just seen");
            let queue = self
                .tenants
                .get_mut(&tenant)
                .expect("a capped head has a queue");
            queue.capped = None;
            debug_assert_eq!(queue.head.1, arrival);
            self.ready.insert(queue.head, tenant);
        }
        None
    }

    /// Whether a head may go.
    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A waiter on another runtime than the sender's waits this long without a sign of the
/// sender's progress before it starts a sender on its own runtime: the sender's may no longer
/// be driven (a current-thread runtime between two `block_on` calls). A sender that waits
/// shows progress at least twice as often.
pub(crate) const SENDER_STALL: Duration = Duration::from_secs(1);

/// The queue of one family in this process.
#[derive(Default)]
pub(crate) struct Batcher {
    queue: Mutex<Queue>,
    /// Counts the sender's steps: a waiter on another runtime watches it.
    progress: AtomicU64,
    /// Told when a waiter queues: a sender waiting for a tenant's cap sends it meanwhile.
    pub(crate) arrived: tokio::sync::Notify,
}

/// What the sender takes from the queue.
pub(crate) enum Taken {
    /// Waiters to send, with their lanes, in turn order.
    Batch(Vec<(usize, Pending)>),
    /// Nobody is waiting (and, if it was the sender's last look, it stopped).
    Empty,
    /// Only waiters whose tenants sit out their caps, the first until then.
    SittingOut(Instant),
}

struct Queue {
    lanes: [FairLane; LANES],
    turns: LaneTurns,
    /// The sender task running, if any (at most one sends at a time: it keeps the order).
    sender: Option<Sender>,
    /// The number of the last sender started.
    senders: u64,
}

/// A sender task: its number, and the runtime it runs on.
#[derive(Clone, Copy)]
struct Sender {
    number: u64,
    runtime: Option<tokio::runtime::Id>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            lanes: Default::default(),
            turns: LaneTurns::new(),
            sender: None,
            senders: 0,
        }
    }
}

/// What a waiter must do after queueing.
pub(crate) enum Queued {
    /// Start sender number `n` on its own runtime: none is running.
    Start(u64),
    /// Wait for the sender running on this runtime.
    Here,
    /// Wait for the sender running on another runtime, watching its progress.
    Elsewhere,
}

/// The runtime the caller runs on, if any.
fn this_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|handle| handle.id())
}

impl Batcher {
    /// Queues `pending` in `priority`'s lane, and says whether a sender must be started.
    pub(crate) fn push(&self, pending: Pending, priority: Priority) -> Queued {
        let mut queue = self.lock();
        let lane = priority.lane();
        let Queue { lanes, turns, .. } = &mut *queue;
        turns.arriving_in(lanes[lane].is_empty(), lane);
        lanes[lane].push_back(pending);
        self.arrived.notify_one();
        let here = this_runtime();
        match queue.sender {
            Some(sender) if sender.runtime == here => Queued::Here,
            Some(_) => Queued::Elsewhere,
            None => Queued::Start(queue.start_sender(here)),
        }
    }

    /// The sender's progress so far (see [`SENDER_STALL`]).
    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Shows the sender's progress.
    pub(crate) fn step(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// A waiter saw no progress from the sender on another runtime since `seen`: it starts
    /// sender number `n` on its own, which takes over (the stalled one stops at its next
    /// step). `None` when the sender moved on or is this runtime's.
    pub(crate) fn take_over(&self, seen: u64) -> Option<u64> {
        let mut queue = self.lock();
        let here = this_runtime();
        let stalled =
            self.progress() == seen && queue.sender.is_some_and(|sender| sender.runtime != here);
        stalled.then(|| queue.start_sender(here))
    }

    /// Whether sender `number` is the one that sends (a sender that was taken over stops).
    pub(crate) fn is_sender(&self, number: u64) -> bool {
        self.lock().sender.is_some_and(|s| s.number == number)
    }

    /// Up to [`MAX_BATCH`] waiters in turn order, skipping those that gave up and those whose
    /// tenants sit out their caps; [`Taken::Empty`] when nobody is waiting, and then, if
    /// `last`, sender `number` stops (the next waiter starts one), or a sender that was taken
    /// over; [`Taken::SittingOut`] when only tenants sitting out their caps wait.
    pub(crate) fn take(&self, number: u64, last: bool) -> Taken {
        self.step();
        let mut queue = self.lock();
        if queue.sender.is_none_or(|s| s.number != number) {
            return Taken::Empty;
        }
        let Queue {
            lanes,
            turns,
            sender,
            ..
        } = &mut *queue;
        let now = Instant::now();
        let back = lanes.iter_mut().filter_map(|lane| lane.refresh(now)).min();
        let mut batch = Vec::new();
        while batch.len() < MAX_BATCH {
            let Some(lane) = turns.next_of(ready(lanes)) else {
                break;
            };
            let pending = lanes[lane]
                .pop_front()
                .expect("`next_of` names a lane with a head that may go");
            if pending.reply.is_closed() {
                continue;
            }
            turns.admitted_from_of(occupied(lanes), lane);
            batch.push((lane, pending));
        }
        if !batch.is_empty() {
            return Taken::Batch(batch);
        }
        match back {
            Some(at) => Taken::SittingOut(at),
            None => {
                if last {
                    *sender = None;
                }
                Taken::Empty
            }
        }
    }

    /// Puts back waiters whose tenants' caps in Redis have no room yet (in the order they were
    /// taken, each with how long its cap said): each tenant keeps its turn and sits out until
    /// its cap has room, while the others go.
    pub(crate) fn sit_out(&self, capped: Vec<(usize, Pending, Duration)>) {
        if capped.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut queue = self.lock();
        for (lane, pending, wait) in capped.into_iter().rev() {
            queue.lanes[lane].sit_out(pending, now + wait);
        }
    }

    /// The sender stopped without finishing (its runtime shut down): nobody sends any more.
    /// Every queued waiter is told so by its dropped reply, and queues again on its own
    /// runtime, which starts a new sender.
    pub(super) fn sender_lost(&self, number: u64) {
        let orphans = {
            let mut queue = self.lock();
            if queue.sender.is_none_or(|s| s.number != number) {
                // Taken over: the waiters are the new sender's.
                return;
            }
            queue.sender = None;
            std::mem::take(&mut queue.lanes)
        };
        drop(orphans);
    }

    /// Puts back what a call did not handle, at the heads of their lanes, in order.
    pub(crate) fn put_back(&self, rest: impl DoubleEndedIterator<Item = (usize, Pending)>) {
        let mut queue = self.lock();
        for (lane, pending) in rest.rev() {
            queue.lanes[lane].push_front(pending);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every update leaves the queue consistent: recover from poisoning.
        self.queue.locked()
    }
}

/// Which lanes have waiters.
fn occupied(lanes: &[FairLane; LANES]) -> [bool; LANES] {
    std::array::from_fn(|lane| !lanes[lane].is_empty())
}

/// Which lanes have a head that may go.
fn ready(lanes: &[FairLane; LANES]) -> [bool; LANES] {
    std::array::from_fn(|lane| lanes[lane].has_ready())
}

impl Queue {
    /// Starts sender number `n` on `runtime`: from now on, it is the one that sends.
    fn start_sender(&mut self, runtime: Option<tokio::runtime::Id>) -> u64 {
        self.senders += 1;
        self.sender = Some(Sender {
            number: self.senders,
            runtime,
        });
        self.senders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(tenant: &str, weight: u32, tokens: u64) -> Pending {
        Pending {
            cost: Cost::request(tokens, 0),
            lease_id: String::new(),
            reply: oneshot::channel().0,
            tenant: Some(Tenant::from(tenant)),
            weight,
            cap: None,
            turn: None,
        }
    }

    fn order(lane: &mut FairLane, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                lane.pop_front()
                    .unwrap()
                    .tenant
                    .unwrap()
                    .as_str()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn tenants_take_turns_by_weight_and_a_newcomer_goes_next() {
        let mut lane = FairLane::default();
        for _ in 0..6 {
            lane.push_back(pending("heavy", 2, 100));
            lane.push_back(pending("light", 1, 100));
        }
        // Tags: heavy 0, 50, 100, 150, ..; light 0, 100, 200; ties go by arrival at the head.
        let six = order(&mut lane, 6);
        assert_eq!(six, ["heavy", "light", "heavy", "light", "heavy", "heavy"]);
        assert_eq!(six.iter().filter(|t| *t == "heavy").count(), 4);
        lane.push_back(pending("new", 1, 100));
        assert_eq!(order(&mut lane, 1), ["new"]);
        assert_eq!(lane.len, 6);
    }

    #[test]
    fn a_capped_tenant_sits_out_keeping_its_place_and_comes_back_first() {
        let mut lane = FairLane::default();
        for tenant in ["a", "a", "b", "b"] {
            lane.push_back(pending(tenant, 1, 10));
        }
        let now = Instant::now();
        let a = lane.pop_front().unwrap();
        assert_eq!(a.tenant.as_ref().unwrap().as_str(), "a");
        lane.sit_out(a, now + Duration::from_secs(1));
        assert_eq!(lane.refresh(now), Some(now + Duration::from_secs(1)));
        // While `a` sits out, `b` goes; `a`'s two wait, in their order.
        assert_eq!(order(&mut lane, 2), ["b", "b"]);
        assert!(!lane.has_ready() && !lane.is_empty());
        lane.push_back(pending("a", 1, 10));
        assert!(
            !lane.has_ready(),
            "a newcomer of a tenant sitting out waits behind its head"
        );
        assert_eq!(lane.refresh(now + Duration::from_secs(1)), None);
        lane.push_back(pending("c", 1, 10));
        assert_eq!(order(&mut lane, 4), ["a", "c", "a", "a"]);
        assert!(lane.is_empty() && lane.tenants.is_empty() && lane.capped.is_empty());
    }

    #[test]
    fn what_is_put_back_gets_the_same_turns_again() {
        let mut lane = FairLane::default();
        for tenant in ["a", "a", "b", "c", "a"] {
            lane.push_back(pending(tenant, 1, 10));
        }
        let taken: Vec<Pending> = (0..4).map(|_| lane.pop_front().unwrap()).collect();
        let first: Vec<String> = taken
            .iter()
            .map(|p| p.tenant.as_ref().unwrap().as_str().to_owned())
            .collect();
        assert_eq!(first, ["a", "b", "c", "a"]);
        for pending in taken.into_iter().rev() {
            lane.push_front(pending);
        }
        assert_eq!(order(&mut lane, 5), ["a", "b", "c", "a", "a"]);
        assert!(lane.is_empty() && lane.tenants.is_empty() && lane.ready.is_empty());
    }
}
