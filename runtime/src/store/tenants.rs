//! A tenant's cap shared by the fleet: its buckets live in Redis beside the family's, under the
//! family's hash tag, and are charged in the same script call as the family's buckets.
//!
//! A request whose tenant's cap has no room yet is answered "capped, for this long" without
//! being charged, and the rest of its batch goes on (see `family.lua`): the sender puts it back
//! at its tenant's head, and the tenant sits out of this process's turns until then, keeping
//! its place, while the other tenants go (see `batch.rs`). A backlog of a capped tenant so
//! costs one entry in a script call per admission, not one per queued request. A settle, a cancellation and a voided batch
//! move the tenant's charge as they move the family's. Tenant caps refill continuously (the
//! GCRA of the family's buckets): a cap with a window, or on concurrency, is a configuration
//! error on a shared family rather than a limit silently kept per process.

use std::sync::Arc;

use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::{Quota, Window};

use super::limits::window_us;

/// One tenant's cap on a shared family: the cap, and the keys of its buckets in Redis.
pub(crate) struct TenantCap {
    /// The cap, as the limiter holds it for the tenant.
    pub(super) quota: Quota,
    /// One key per bucket the cap limits, with its dimension, in [`SharedFamily::buckets`]
    /// order.
    pub(super) keys: Vec<(Dimension, Arc<str>)>,
}

impl TenantCap {
    /// The keys of its buckets, in order.
    pub(super) fn key_names(&self) -> Vec<Arc<str>> {
        self.keys.iter().map(|(_, key)| key.clone()).collect()
    }

    /// Per bucket of the cap: its key, capacity, period (µs) and `cost`'s charge on it.
    pub(super) fn charges<'a>(
        &'a self,
        cost: &'a Cost,
    ) -> impl Iterator<Item = (&'a Arc<str>, u64, u64, u64)> + 'a {
        self.keys.iter().map(move |(dimension, key)| {
            (
                key,
                self.quota.capacity(*dimension).unwrap_or(1),
                window_us(&self.quota, *dimension),
                dimension.charge(cost),
            )
        })
    }
}

/// Checks that `cap` can be kept in Redis: its buckets refill continuously and it has no
/// concurrency limit.
pub(crate) fn check_shared_cap(cap: &Quota) -> Result<(), Error> {
    if let Some(limit) = cap.concurrency {
        return Err(Error::config(
            "a tenant cap's concurrency",
            limit.to_string(),
            "no concurrency cap on the tenants of a family shared through Redis \
             (RATE_LIMITED_REDIS_URL): tenant caps there limit rates (RPM, TPM, ...) only",
        ));
    }
    if cap.window != Window::Continuous {
        return Err(Error::config(
            "a tenant cap's window",
            format!("{:?}", cap.window).to_lowercase(),
            "continuous: the tenant caps of a family shared through Redis refill continuously",
        ));
    }
    Ok(())
}

/// The request larger than its tenant's cap, if it is: it can never be admitted.
pub(super) fn too_large_for_cap(cap: &TenantCap, cost: &Cost) -> Option<Error> {
    cap.keys.iter().find_map(|&(dimension, _)| {
        let capacity = cap.quota.capacity(dimension)?;
        let requested = dimension.charge(cost);
        (requested > capacity).then_some(Error::RequestTooLarge {
            dimension,
            requested,
            capacity,
        })
    })
}
