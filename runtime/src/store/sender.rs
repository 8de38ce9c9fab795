//! The sender of one family's queued reservations in this process: one task at a time takes
//! the queue's head in batches to Redis and tells each waiter its outcome (see `batch.rs`).
//!
//! After a batch whose last request was scheduled ahead, the sender waits for that request's
//! start before it schedules another, so a later waiter of a higher lane still goes first. It
//! does not wait for nothing: when that request is cancelled it sends the refund and goes on at
//! once, and when room comes back in this process (a refund, a freed slot, a raised limit) it
//! admits whoever fits now, scheduling nobody else ahead. A batch whose reply never came (a
//! timeout) may have run on the server: it is voided there once Redis answers again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::batch::{Admission, Outcome, Pending, Taken, SENDER_STALL, SLOT_POLL};
use super::config::OnFailure;
use super::connection::{Call, Reply, Unavailable, PROBE_INTERVAL};
use super::family::{Ahead, SharedFamily};
use crate::sync::Locked;
use crate::units::cost::Dimension;
use crate::units::quota::Quota;

/// How long a batch given up on is offered to Redis to void: less than the script keeps its
/// record (`RECORD_TTL_MS`, two minutes).
const VOID_FOR: Duration = Duration::from_secs(100);

/// What one batch call did.
enum Sent {
    /// Nobody was waiting.
    Empty,
    /// Everyone sent was told.
    Done,
    /// The head found no free concurrency slot; the earliest lease expires after this.
    NoSlot(Duration),
    /// The last request admitted starts after this.
    Ahead(Duration),
    /// The head would have waited longer than the call allowed.
    WouldWait,
    /// Only tenants sitting out their caps wait, the first until then.
    SittingOut(Instant),
}

impl SharedFamily {
    /// Sender number `number`: batches until the queue is empty, or until a sender on another
    /// runtime takes over (see `batch.rs`).
    pub(super) async fn send_batches(self, number: u64) {
        /// Cancelled with its runtime, the sender hands its waiters back instead of leaving
        /// them queued for nobody, and sends the refund it was given.
        struct Lost<'a>(&'a SharedFamily, u64, bool);
        impl Drop for Lost<'_> {
            fn drop(&mut self) {
                if !self.2 && self.0.batcher().is_sender(self.1) {
                    self.0.batcher().sender_lost(self.1);
                    let ahead = std::mem::take(&mut *self.0.inner.ahead.locked());
                    if let Ahead::Cancelled(refund) = ahead {
                        self.0.send(refund);
                    }
                }
            }
        }
        let mut lost = Lost(&self, number, false);
        // Taking over from a stalled sender: the refund it was given goes first.
        let ahead = std::mem::take(&mut *self.inner.ahead.locked());
        if let Ahead::Cancelled(refund) = ahead {
            let _ = self.store().run(&refund).await;
        }
        self.send_until_empty(number).await;
        lost.2 = true;
    }

    async fn send_until_empty(&self, number: u64) {
        loop {
            match self.send_once(number, None).await {
                Sent::Empty => return,
                Sent::Done | Sent::WouldWait => {}
                Sent::NoSlot(retry) => {
                    // A slot freed by another process sends no signal here: look again soon;
                    // one freed in this process wakes us.
                    let pause = retry.clamp(Duration::from_millis(1), SLOT_POLL);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.inner.wake.notified() => {}
                    }
                }
                Sent::Ahead(wait) => self.wait_for_ahead(number, wait).await,
                Sent::SittingOut(until) => self.wait_for_caps(number, until).await,
            }
        }
    }

    /// Waits until `until`, when a tenant sitting out its cap comes back, or until a waiter
    /// queues (it may go meanwhile) or room comes back here.
    async fn wait_for_caps(&self, number: u64, until: Instant) {
        tokio::select! {
            _ = self.sleep_showing_progress(number, until) => {}
            () = self.batcher().arrived.notified() => {}
            () = self.inner.wake.notified() => {}
        }
    }

    /// Sleeps until `until`, showing progress meanwhile (a waiter on another runtime then
    /// knows this sender is driven); `false` if another sender took over first.
    async fn sleep_showing_progress(&self, number: u64, until: Instant) -> bool {
        loop {
            let tick = (Instant::now() + SENDER_STALL / 2).min(until);
            tokio::time::sleep_until(tick).await;
            if tick == until {
                return true;
            }
            self.batcher().step();
            if !self.batcher().is_sender(number) {
                return false;
            }
        }
    }

    /// Waits `wait`, for the start of this process's request scheduled ahead, unless it is
    /// cancelled first; meanwhile, room given back here admits whoever fits at once.
    async fn wait_for_ahead(&self, number: u64, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                started = self.sleep_showing_progress(number, until) => {
                    if started {
                        break;
                    }
                    return;
                }
                () = self.inner.wake.notified() => {}
            }
            let gone = {
                let mut ahead = self.inner.ahead.locked();
                match &*ahead {
                    Ahead::Scheduled(_) => None,
                    _ => Some(std::mem::take(&mut *ahead)),
                }
            };
            match gone {
                None => {
                    let _ = self.send_once(number, Some(Duration::ZERO)).await;
                }
                Some(Ahead::Cancelled(refund)) => {
                    let _ = self.store().run(&refund).await;
                    return;
                }
                Some(_) => return,
            }
        }
        // Started: done waiting (with the refund of a cancellation that came just now).
        let ahead = std::mem::take(&mut *self.inner.ahead.locked());
        if let Ahead::Cancelled(refund) = ahead {
            let _ = self.store().run(&refund).await;
        }
    }

    /// Sends the queue's head in one batch, none of it scheduled more than `max_wait` ahead,
    /// and tells each waiter handled its outcome. Without a bound, this is the sender's turn
    /// and it stops when nobody waits.
    async fn send_once(&self, number: u64, max_wait: Option<Duration>) -> Sent {
        // What went through the fallback reaches Redis before anything more is charged there.
        if self.inner.recent.has_unsynced() {
            self.write_back_fallback().await;
        }
        let batch = match self.batcher().take(number, max_wait.is_none()) {
            Taken::Batch(batch) => batch,
            Taken::Empty => return Sent::Empty,
            Taken::SittingOut(until) => return Sent::SittingOut(until),
        };
        let quota = Arc::new(self.current_quota());
        let batch_id = self.new_id('b');
        let call = self.batch_call(&quota, &batch_id, max_wait, batch.iter().map(|(_, p)| p));
        let dimensions = Self::bucket_dimensions(&quota);
        let answer = match self.store().run_batch(&call, dimensions.len()).await {
            Ok(answer) => answer,
            Err(why) => {
                if let Unavailable::Failed(_) = why {
                    // Its waiters go out through the fallback (their charges then count what
                    // they really use) or fail (their charges go back too).
                    let refund = self.inner.on_failure == OnFailure::Closed;
                    let requests = batch.iter().map(|(_, p)| p);
                    self.void_later(self.void_call(&quota, &batch_id, refund, requests));
                }
                // Each waiter falls back (or fails) on its own.
                for (_, pending) in batch {
                    let _ = pending.reply.send(Outcome::Unavailable(why.clone()));
                }
                return Sent::Done;
            }
        };
        let reset = self.saw_epoch(answer.epoch);
        if answer.replies.is_empty() {
            // Sent with an epoch the store no longer has: nothing was charged. The waiters
            // keep their places; the recovery goes first (unless a renewal began it).
            self.batcher().put_back(batch.into_iter());
            if reset {
                self.recover_reset().await;
            }
            return Sent::Done;
        }
        let now = answer.now;
        let mut batch = batch.into_iter();
        let mut sent = Sent::Done;
        let mut capped = Vec::new();
        for (reply, marks) in answer.replies.into_iter().zip(answer.marks) {
            let (lane, pending) = batch.next().expect("one reply per request sent");
            let outcome = match reply {
                Reply::Admitted { wait } => {
                    if !wait.is_zero() {
                        // Before the waiter hears of it: it may cancel at once.
                        *self.inner.ahead.locked() = Ahead::Scheduled(pending.lease_id.clone());
                        sent = Sent::Ahead(wait);
                    }
                    let marks = dimensions.iter().copied().zip(marks).collect();
                    Outcome::Admitted(self.admission(&quota, &pending, now, wait, marks))
                }
                Reply::TooLarge { index } => {
                    let dimension = dimensions[index.min(dimensions.len() - 1)];
                    Outcome::TooLarge {
                        dimension,
                        capacity: quota.capacity(dimension).unwrap_or(0),
                    }
                }
                Reply::Capped { wait } => {
                    // Nothing charged: its tenant sits out until its cap has room.
                    capped.push((lane, pending, wait));
                    continue;
                }
                Reply::NoSlot { .. } | Reply::WouldWait { .. } => {
                    // Not reserved: it keeps its place, and asks again.
                    self.batcher()
                        .put_back(std::iter::once((lane, pending)).chain(batch.by_ref()));
                    sent = match reply {
                        Reply::NoSlot { retry } => Sent::NoSlot(retry),
                        _ => Sent::WouldWait,
                    };
                    break;
                }
            };
            // A waiter that gave up while the call was on the wire drops its admission here,
            // which gives it back.
            let _ = pending.reply.send(outcome);
        }
        self.batcher().put_back(batch);
        // Taken before what was put back: put back after it (the last taken first).
        self.batcher().sit_out(capped);
        if reset {
            // A batch sent with no epoch seen yet, or one seen by a renewal meanwhile.
            self.recover_reset().await;
        }
        sent
    }

    /// `pending`'s admission, to start after `wait` from `now` (µs on the server's clock):
    /// given back if its waiter never claims it.
    fn admission(
        &self,
        quota: &Arc<Quota>,
        pending: &Pending,
        now: u64,
        wait: Duration,
        marks: Vec<(Dimension, u64)>,
    ) -> Admission {
        let start_us = now.saturating_add(u64::try_from(wait.as_micros()).unwrap_or(u64::MAX));
        let (family, charged, cost, id, cap) = (
            self.clone(),
            Arc::clone(quota),
            pending.cost,
            pending.lease_id.clone(),
            pending.cap.clone(),
        );
        let ahead = !wait.is_zero();
        let refund = move || {
            family.refund_unclaimed(&charged, &cost, &id, start_us, ahead, cap.as_deref());
        };
        Admission::new(wait, start_us, Arc::clone(quota), marks, Box::new(refund))
    }

    /// Sends `void`, for a batch that failed without an answer and may have run all the same,
    /// once Redis answers (see [`SharedFamily::void_call`]).
    fn void_later(&self, void: Call) {
        let family = self.clone();
        super::spawn_detached(async move {
            let deadline = Instant::now() + VOID_FOR;
            while Instant::now() < deadline {
                // The breaker lets one call through per probe interval.
                tokio::time::sleep(PROBE_INTERVAL).await;
                match family.store().run(&void).await {
                    Ok(_) | Err(Unavailable::Rejected(_)) => return,
                    Err(Unavailable::Open | Unavailable::Failed(_)) => {}
                }
            }
            tracing::warn!(
                tag = %family.tag(),
                "a batch that timed out could not be voided: what it charged stays until it refills"
            );
        });
    }
}
