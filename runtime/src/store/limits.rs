//! The quota arithmetic of a shared family: bucket windows, what can never fit, and the share
//! a process falls back to while Redis is away.

use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

/// A quota's concurrency cap, for a cost that takes a slot.
pub(super) fn slot_cap(quota: &Quota, cost: &Cost) -> Option<u32> {
    quota.concurrency.filter(|_| cost.requests > 0)
}

/// A bucket's window in µs (the minimum interval's own length for `MinInterval`).
pub(super) fn window_us(quota: &Quota, dimension: Dimension) -> u64 {
    let window = match dimension {
        Dimension::MinInterval => quota.min_interval,
        _ => dimension.window(),
    };
    window.map_or(0, |w| u64::try_from(w.as_micros()).unwrap_or(u64::MAX))
}

pub(super) fn too_large(quota: &Quota, cost: &Cost) -> Option<Error> {
    let after_response = quota.charged == crate::units::quota::Charged::AfterResponse;
    Dimension::ALL.iter().find_map(|&dimension| {
        let capacity = quota.capacity(dimension)?;
        // Admitted while not full: no request is too large for a bucket the server counts
        // after the response.
        if after_response && dimension.counts_tokens() {
            return None;
        }
        let requested = match dimension {
            Dimension::Concurrency => u64::from(cost.requests),
            _ => dimension.charge(cost),
        };
        (requested > capacity).then_some(Error::RequestTooLarge {
            dimension,
            requested,
            capacity,
        })
    })
}

/// `quota` at `share` of every limit: what one process may use while Redis is away.
pub(super) fn fallback_quota(quota: &Quota, share: f64) -> Quota {
    let mut scaled = quota.clone();
    for dimension in Dimension::ALL {
        if dimension == Dimension::MinInterval {
            continue;
        }
        if let Some(limit) = quota.limit(dimension) {
            let part = ((limit as f64 * share).floor() as u64).max(1);
            scaled.set_limit(dimension, Some(part));
        }
    }
    scaled.min_interval = quota.min_interval.map(|i| i.div_f64(share));
    scaled
}
