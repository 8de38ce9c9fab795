//! Giving Redis back what it does not know: what this process spent on the fallback while
//! Redis was away, and, when Redis comes back without its state, everything the process spent
//! within each bucket's window, its requests still running and its 429 hold.
//!
//! - **After an outage** (or a call Redis refused), the sender writes back what went through
//!   the fallback before its next batch: that batch is charged after it.
//! - **A store that lost its state** (a restart without persistence, a failover to a lagging
//!   replica, eviction, `FLUSHALL`) has a new epoch (see `family.lua`). A batch sent with the
//!   epoch this process saw before is answered with the new one and charges nothing; the
//!   sender then writes back the recent spend, adds its live leases again and restores its
//!   hold, and sends the batch again. A renewal that finds the new epoch does the same.
//!
//! Each process knows only its own spend, and the first to write back is admitted again before
//! the others have: so each writes back its spend scaled to the fleet by the fallback share
//! (configured as this process's part of the fleet), and the script fills a bucket at most.
//! After an outage or a reset the fleet goes on at the limit's rate, with no burst on top of
//! what the provider still counts; at worst it gives up one window's burst.
//!
//! What no process can write back: a fleet that starts against a provider still counting an
//! earlier minute, and the spend of a process that sends nothing after the reset until its
//! next call.

use super::connection::Unavailable;
use super::family::SharedFamily;
use super::recent::Units;
use crate::sync::Locked;

impl SharedFamily {
    /// Takes note of the store's `epoch` from a reply: true when the store lost its state
    /// since this process last saw it (once per change, whoever sees it first).
    pub(super) fn saw_epoch(&self, epoch: u64) -> bool {
        if epoch == 0 {
            return false;
        }
        let before = self.inner.epoch.locked().replace(epoch);
        before.is_some_and(|before| before != epoch)
    }

    /// Writes back what went through the fallback and Redis does not know yet. False when
    /// Redis did not take it (it is kept for the next try).
    pub(super) async fn write_back_fallback(&self) -> bool {
        let quota = self.current_quota();
        let units = self.inner.recent.take_unsynced(&quota);
        if units.iter().all(|&u| u == 0) {
            return true;
        }
        let call = self.write_back_call(&quota, &self.fleet_wide(&units));
        match self.store().run(&call).await {
            Ok(_) => {
                tracing::info!(
                    tag = %self.tag(),
                    ?units,
                    "wrote back to Redis what this process admitted on its fallback"
                );
                true
            }
            // Refused: it will never be taken; the units stay counted here only.
            Err(Unavailable::Rejected(_)) => true,
            Err(Unavailable::Open | Unavailable::Failed(_)) => {
                self.inner.recent.restore(&units);
                false
            }
        }
    }

    /// This process's spend `units`, scaled to the fleet by the fallback share (a refund is
    /// given back as it is).
    fn fleet_wide(&self, units: &Units) -> Units {
        let share = self.inner.share;
        units.map(|u| {
            if u > 0 {
                (u as f64 / share).ceil() as i64
            } else {
                u
            }
        })
    }

    /// The store lost its state: writes back everything this process spent within each
    /// bucket's window, adds its live leases again and restores its hold.
    pub(super) async fn recover_reset(&self) {
        let quota = self.current_quota();
        let units = self.inner.recent.take_all(&quota);
        tracing::warn!(
            tag = %self.tag(),
            ?units,
            "Redis lost the shared limiter state (restart, failover or flush): writing back \
             this process's recent spend and running requests"
        );
        if units.iter().any(|&u| u != 0) {
            let call = self.write_back_call(&quota, &self.fleet_wide(&units));
            let _ = self.store().run(&call).await;
        }
        let live: Vec<(String, u32)> = self
            .inner
            .live
            .locked()
            .iter()
            .map(|(id, &slots)| (id.clone(), slots))
            .collect();
        for (id, slots) in live {
            let _ = self.store().run(&self.renew_call(&id, slots, true)).await;
        }
        let held_until = *self.inner.held_until.locked();
        if let Some(left) = held_until.and_then(|until| {
            until
                .checked_duration_since(tokio::time::Instant::now())
                .filter(|left| !left.is_zero())
        }) {
            let _ = self.store().run(&self.hold_call(left)).await;
        }
    }
}
