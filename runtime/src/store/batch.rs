//! One process's reservations on one shared family, sent to Redis in batches.
//!
//! Waiters queue here by [`Priority`] lane and arrival order. One sender task takes the queue's
//! head in turn order, up to [`MAX_BATCH`] at a time, and reserves them in one script call
//! (`batch` mode), which stops after the first request that has to wait: so this process has
//! at most one request scheduled ahead in Redis, and the sender schedules nothing more ahead
//! until that one's start (see `sender.rs`). A later waiter of a higher lane therefore goes
//! before the ones still queued here, and processes interleave fairly. Under no pressure,
//! everything that queued while one call was on the wire goes in the next call: one round trip
//! for many reservations.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::limiter::lanes::{LaneTurns, Priority, LANES};
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::Quota;

use super::connection::Unavailable;
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
}

struct Queue {
    lanes: [VecDeque<Pending>; LANES],
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
        turns.arriving(lanes, lane);
        lanes[lane].push_back(pending);
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

    /// Up to [`MAX_BATCH`] waiters in turn order, skipping those that gave up; `None` when
    /// nobody is waiting, and then, if `last`, sender `number` stops (the next waiter starts
    /// one). `None` too for a sender that was taken over.
    pub(crate) fn take(&self, number: u64, last: bool) -> Option<Vec<(usize, Pending)>> {
        self.step();
        let mut queue = self.lock();
        if queue.sender.is_none_or(|s| s.number != number) {
            return None;
        }
        let Queue {
            lanes,
            turns,
            sender,
            ..
        } = &mut *queue;
        let mut batch = Vec::new();
        while batch.len() < MAX_BATCH {
            let Some(lane) = turns.next(lanes) else { break };
            let pending = lanes[lane]
                .pop_front()
                .expect("`next` names a lane with waiters");
            if pending.reply.is_closed() {
                continue;
            }
            turns.admitted_from(lanes, lane);
            batch.push((lane, pending));
        }
        if batch.is_empty() {
            if last {
                *sender = None;
            }
            return None;
        }
        Some(batch)
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
