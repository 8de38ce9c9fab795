//! What a shared reservation holds until it ends: its charge, under the limits it was charged
//! with, and its concurrency slots, renewed while it runs; and how whatever is given back
//! reaches Redis (an admission nobody claimed included).

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::limiter::gcra::BUCKETS;
use crate::limiter::SharedHold;
use crate::units::cost::Cost;
use crate::units::quota::Quota;

use super::batch::Admission;
use super::connection::Call;
use super::family::{Ahead, SharedFamily};
use super::limits::slot_cap;
use super::recent::Through;
use super::tenants::TenantCap;
use crate::sync::Locked;

/// What a shared reservation must give back: its charge, and its concurrency slots.
struct Held {
    family: SharedFamily,
    /// The reservation's id (its leases are `<id>:<k>`).
    id: String,
    lease: Option<Lease>,
    /// The limits it was charged under: a settle undoes exactly that charge, whatever the
    /// limits are by then.
    quota: Arc<Quota>,
    /// When it starts, in µs since the epoch on the server's clock.
    start_us: u64,
    /// When it starts on this process's clock: given back whole before, it was cancelled.
    starts_at: Instant,
    /// Its tenant's cap, charged with it.
    cap: Option<Arc<TenantCap>>,
}

struct Lease {
    family: SharedFamily,
    id: String,
    requests: u32,
    renewal: JoinHandle<()>,
}

impl SharedFamily {
    /// What reservation `id` of `cost`, admitted as `admission`, holds (its slots renewed
    /// from now on).
    pub(super) fn held(
        &self,
        id: String,
        cost: Cost,
        admission: Admission,
        cap: Option<Arc<TenantCap>>,
    ) -> Box<dyn SharedHold> {
        let lease = slot_cap(&admission.quota, &cost).map(|_| self.lease(&id, cost.requests));
        Box::new(Held {
            family: self.clone(),
            id,
            lease,
            quota: admission.quota.clone(),
            start_us: admission.start_us,
            starts_at: Instant::now() + admission.wait,
            cap,
        })
    }

    /// Keeps a lease alive while its request runs: a crashed process stops renewing, and its
    /// slots free themselves one lease time later. A renewal that finds the store lost its
    /// state starts the recovery (see `recovery.rs`), which adds the live leases again.
    fn lease(&self, id: &str, requests: u32) -> Lease {
        self.inner.live.locked().insert(id.to_owned(), requests);
        let family = self.clone();
        let call = self.renew_call(id, requests, false);
        let renewal = tokio::spawn(async move {
            let every = family.inner.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                // A failed renewal is retried on the next tick; the lease outlives a few.
                let epoch = family.store().invoke(&call, |reply| match reply {
                    [1, epoch] => Ok(u64::try_from(*epoch).unwrap_or(0)),
                    other => Err(format!("an unexpected reply to a renewal: {other:?}")),
                });
                if let Ok(epoch) = epoch.await {
                    if family.saw_epoch(epoch) {
                        family.recover_reset().await;
                    }
                }
            }
        });
        Lease {
            family: self.clone(),
            id: id.to_owned(),
            requests,
            renewal,
        }
    }

    /// Gives back an admission no waiter claimed: charged under `quota` for `cost` at
    /// `start_us` (the server's clock), scheduled to start later if `ahead`.
    pub(super) fn refund_unclaimed(
        &self,
        quota: &Quota,
        cost: &Cost,
        id: &str,
        start_us: u64,
        ahead: bool,
        cap: Option<&TenantCap>,
    ) {
        let nothing = Cost::default();
        self.inner
            .recent
            .record(quota, cost, &nothing, Through::Redis);
        let slots = slot_cap(quota, cost).map(|_| cost.requests);
        let nothing = &Cost::default();
        let call = self.adjust_call(quota, cost, nothing, id, slots, Some(start_us), cap);
        self.give_back(call, id, ahead);
    }

    /// Sends `call`, which gives back what reservation `id` held, and wakes the sender: the
    /// room may let its queue go. A reservation cancelled `before_start` that the sender waits
    /// for goes through the sender, which sends the refund before its next batch (so that
    /// batch is charged without the cancelled place), then goes on at once.
    fn give_back(&self, call: Call, id: &str, before_start: bool) {
        if before_start {
            let mut ahead = self.inner.ahead.locked();
            if matches!(&*ahead, Ahead::Scheduled(scheduled) if scheduled == id) {
                *ahead = Ahead::Cancelled(call);
                drop(ahead);
                self.inner.wake.notify_one();
                return;
            }
        }
        self.send(call);
        self.inner.wake.notify_one();
    }
}

impl SharedHold for Held {
    fn start(&self) -> Option<std::time::SystemTime> {
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_micros(self.start_us))
    }

    /// Moves the charge from `from` to `to` under the limits it was charged with (not
    /// `_quota`, the ones in force now) and frees the concurrency slots.
    fn release(self: Box<Self>, _quota: &Quota, from: &Cost, to: &Cost) {
        let Held {
            family,
            id,
            lease,
            quota,
            start_us,
            starts_at,
            cap,
        } = *self;
        // Dropping the lease stops its renewal.
        let slots = lease.map(|lease| lease.requests);
        if slots.is_none() && from == to {
            return;
        }
        // While Redis is away the settle would be lost: it is written back with the
        // fallback's spend instead, and only the slots are freed here.
        let through = if family.is_down() {
            Through::Fallback
        } else {
            Through::Redis
        };
        family.inner.recent.record(&quota, from, to, through);
        let to = if through == Through::Fallback {
            from
        } else {
            to
        };
        if slots.is_none() && from == to {
            return;
        }
        let call = family.adjust_call(&quota, from, to, &id, slots, Some(start_us), cap.as_deref());
        let before_start = *to == Cost::default() && Instant::now() < starts_at;
        let frees = slots.is_some() || BUCKETS.iter().any(|d| d.charge(to) < d.charge(from));
        if before_start || frees {
            family.give_back(call, &id, before_start);
        } else {
            family.send(call);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        self.family.inner.live.locked().remove(&self.id);
    }
}
