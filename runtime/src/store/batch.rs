//! One process's reservations on one shared family, sent to Redis in batches.
//!
//! Waiters queue here by [`Priority`] lane and arrival order. One sender task takes the queue's
//! head in turn order, up to [`MAX_BATCH`] at a time, and reserves them in one script call
//! (`batch` mode), which stops after the first request that has to wait: so this process has
//! at most one request scheduled ahead in Redis, and the sender sends nothing more until that
//! one's start. A later waiter of a higher lane therefore goes before the ones still queued
//! here, and processes interleave fairly. Under no pressure, everything that queued while one
//! call was on the wire goes in the next call: one round trip for many reservations.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::priority::{LaneTurns, Priority, LANES};
use crate::quota::{Cost, Quota};

use super::connection::{Reply, Unavailable};
use super::family::SharedFamily;

/// At most this many reservations in one script call: bounds the call's size and its time on
/// the server (other processes' calls wait behind it).
pub(crate) const MAX_BATCH: usize = 64;

/// While no concurrency slot is free, look again at least this often: a slot freed by
/// another process sends no signal here.
const SLOT_POLL: Duration = Duration::from_millis(20);

/// What the sender tells a waiter.
pub(crate) enum Outcome {
    /// Reserved: start after `wait`, at `start_us` on the server's clock.
    Admitted { wait: Duration, start_us: u64 },
    /// Bucket `index` can never fit the request.
    TooLarge { index: usize },
    /// Redis did not answer.
    Unavailable(Unavailable),
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
    /// Queues `pending` in `priority`'s lane, starting the sender if it is not running.
    pub(crate) fn push(&self, family: &SharedFamily, pending: Pending, priority: Priority) {
        let start = {
            let mut queue = self.lock();
            let lane = priority.lane();
            let Queue { lanes, turns, .. } = &mut *queue;
            turns.arriving(lanes, lane);
            lanes[lane].push_back(pending);
            !std::mem::replace(&mut queue.sending, true)
        };
        if start {
            let family = family.clone();
            tokio::spawn(async move { family.send_batches().await });
        }
    }

    /// Up to [`MAX_BATCH`] waiters in turn order, skipping those that gave up; `None` (and the
    /// sender stops) when nobody is waiting.
    pub(crate) fn take(&self) -> Option<Vec<(usize, Pending)>> {
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
            *sending = false;
            return None;
        }
        Some(batch)
    }

    /// The sender stopped without finishing (its runtime shut down): nobody sends any more.
    /// Every queued waiter is told so by its dropped reply, and queues again on its own
    /// runtime, which starts a new sender.
    fn sender_lost(&self) {
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
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SharedFamily {
    /// The sender: batches until the queue is empty.
    async fn send_batches(self) {
        /// Cancelled with its runtime, the sender hands its waiters back instead of leaving
        /// them queued for nobody.
        struct Lost<'a>(&'a Batcher, bool);
        impl Drop for Lost<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.sender_lost();
                }
            }
        }
        let mut lost = Lost(self.batcher(), false);
        self.send_until_empty().await;
        lost.1 = true;
    }

    async fn send_until_empty(&self) {
        while let Some(batch) = self.batcher().take() {
            let quota = self.current_quota();
            let call = self.batch_call(&quota, batch.iter().map(|(_, p)| p));
            let (now, replies) = match self.store().run_batch(&call).await {
                Ok(answer) => answer,
                Err(why) => {
                    // Each waiter falls back (or fails) on its own.
                    for (_, pending) in batch {
                        let _ = pending.reply.send(Outcome::Unavailable(why.clone()));
                    }
                    continue;
                }
            };
            let handled = replies.len();
            let mut batch = batch.into_iter();
            let mut pause = Duration::ZERO;
            for reply in replies {
                let (lane, pending) = batch.next().expect("one reply per request sent");
                let outcome = match reply {
                    Reply::Admitted { wait } => {
                        pause = wait;
                        Outcome::Admitted {
                            wait,
                            start_us: now
                                .saturating_add(u64::try_from(wait.as_micros()).unwrap_or(0)),
                        }
                    }
                    Reply::TooLarge { index } => Outcome::TooLarge { index },
                    Reply::NoSlot { retry } => {
                        // Not reserved: it keeps its place, and asks again.
                        self.batcher()
                            .put_back(std::iter::once((lane, pending)).chain(batch.by_ref()));
                        pause = retry.clamp(Duration::from_millis(1), SLOT_POLL);
                        break;
                    }
                };
                if let Err(Outcome::Admitted { .. }) = pending.reply.send(outcome) {
                    // It gave up while the call was on the wire: give the charge back.
                    self.refund_abandoned(&quota, &pending.cost, &pending.lease_id);
                }
            }
            debug_assert!(handled > 0, "the script handles at least one request");
            self.batcher().put_back(batch);
            if !pause.is_zero() {
                // One request of ours scheduled ahead at a time: the rest wait here, where a
                // higher lane can still go first.
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A quota's concurrency cap, for a cost that takes a slot.
pub(crate) fn slot_cap(quota: &Quota, cost: &Cost) -> Option<u32> {
    quota.concurrency.filter(|_| cost.requests > 0)
}
