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
    refund: Option<Box<dyn FnOnce() + Send>>,
}

impl Admission {
    pub(crate) fn new(
        wait: Duration,
        start_us: u64,
        quota: Arc<Quota>,
        refund: Box<dyn FnOnce() + Send>,
    ) -> Self {
        Admission {
            wait,
            start_us,
            quota,
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

/// The queue of one family in this process.
#[derive(Default)]
pub(crate) struct Batcher {
    queue: Mutex<Queue>,
}

struct Queue {
    lanes: [VecDeque<Pending>; LANES],
    turns: LaneTurns,
    /// Whether a sender task is running (at most one: it keeps the order).
    sending: bool,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            lanes: Default::default(),
            turns: LaneTurns::new(),
            sending: false,
        }
    }
}

impl Batcher {
    /// Queues `pending` in `priority`'s lane; true when no sender is running and the caller
    /// must start one.
    pub(crate) fn push(&self, pending: Pending, priority: Priority) -> bool {
        let start = {
            let mut queue = self.lock();
            let lane = priority.lane();
            let Queue { lanes, turns, .. } = &mut *queue;
            turns.arriving(lanes, lane);
            lanes[lane].push_back(pending);
            !std::mem::replace(&mut queue.sending, true)
        };
        start
    }

    /// Up to [`MAX_BATCH`] waiters in turn order, skipping those that gave up; `None` when
    /// nobody is waiting, and then, if `last`, the sender stops (the next waiter starts one).
    pub(crate) fn take(&self, last: bool) -> Option<Vec<(usize, Pending)>> {
        let mut queue = self.lock();
        let Queue {
            lanes,
            turns,
            sending,
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
                *sending = false;
            }
            return None;
        }
        Some(batch)
    }

    /// The sender stopped without finishing (its runtime shut down): nobody sends any more.
    /// Every queued waiter is told so by its dropped reply, and queues again on its own
    /// runtime, which starts a new sender.
    pub(super) fn sender_lost(&self) {
        let orphans = {
            let mut queue = self.lock();
            queue.sending = false;
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
