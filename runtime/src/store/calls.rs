//! The script calls of a shared family (`family.lua` describes the arguments): every call names
//! the family's fixed keys, then one bucket per limited dimension, and ends with the same tail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::limiter::gcra::BUCKETS;
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::{Charged, Quota, Window};

use super::batch::Pending;
use super::connection::Call;
use super::family::{SharedFamily, FIXED_KEYS};
use super::limits::{slot_cap, window_us};
use super::recent::{units_of, Units};
use super::tenants::TenantCap;
use crate::sync::Locked;

/// What a call says beyond its buckets (the script's tail arguments).
#[derive(Default)]
struct Tail<'a> {
    /// The concurrency cap, or 0 when the call takes, frees or renews no slot.
    lease_limit: u64,
    /// Slots the call frees or renews.
    requests: u32,
    /// The reservation it is about (its leases are `<id>:<k>`).
    id: &'a str,
    /// A hold's length; for a void, 1 to refund the charges too; for a renewal, 1 to add the
    /// leases again; for a batch, the store's epoch this process knows (0: none yet).
    extra_us: u128,
    /// A batch's id.
    batch_id: &'a str,
    /// The longest wait a batch may schedule (`None`: no bound).
    max_wait: Option<Duration>,
}

impl SharedFamily {
    /// The dimensions of `quota`'s buckets, in the order their keys are sent.
    pub(super) fn bucket_dimensions(quota: &Quota) -> Vec<Dimension> {
        Self::buckets(quota).map(|(_, d)| d).collect()
    }

    /// `quota`'s buckets, with their places in [`BUCKETS`], in the order their keys are sent.
    fn buckets(quota: &Quota) -> impl Iterator<Item = (usize, Dimension)> + '_ {
        BUCKETS
            .into_iter()
            .enumerate()
            .filter(|&(_, d)| quota.capacity(d).is_some() && window_us(quota, d) > 0)
    }

    /// A call on the family's [`FIXED_KEYS`] alone.
    fn fixed_call(&self, buckets: usize) -> Call {
        let mut keys = Vec::with_capacity(FIXED_KEYS + buckets);
        keys.extend(self.inner.keys[..FIXED_KEYS].iter().cloned());
        Call {
            keys,
            args: Vec::with_capacity(10 + 4 * buckets),
            ..Call::default()
        }
    }

    /// A call in `mode` on the fixed keys and `quota`'s buckets (and their window logs when
    /// the server counts per window), with `per_bucket`'s two arguments for each, and `tail`.
    fn bucket_call(
        &self,
        quota: &Quota,
        mode: &str,
        per_bucket: impl Fn(Dimension) -> (i128, i128),
        tail: Tail<'_>,
    ) -> Call {
        self.tenant_bucket_call(quota, mode, per_bucket, tail, Vec::new())
    }

    /// [`bucket_call`](Self::bucket_call), naming `tenant_keys` (tenant cap buckets) last.
    fn tenant_bucket_call(
        &self,
        quota: &Quota,
        mode: &str,
        per_bucket: impl Fn(Dimension) -> (i128, i128),
        tail: Tail<'_>,
        tenant_keys: Vec<Arc<str>>,
    ) -> Call {
        let windowed = quota.window != Window::Continuous;
        let mut call = self.fixed_call(BUCKETS.len() * if windowed { 2 } else { 1 });
        let shape = if windowed { "w" } else { "" };
        call.args.push(match tenant_keys.len() {
            0 if windowed => format!("{mode}:w"),
            0 => mode.to_owned(),
            count => format!("{mode}:{shape}:{count}"),
        });
        for (slot, dimension) in Self::buckets(quota) {
            call.keys.push(self.inner.keys[FIXED_KEYS + slot].clone());
            let (a, b) = per_bucket(dimension);
            call.args.extend([
                quota.capacity(dimension).unwrap_or(1).to_string(),
                window_us(quota, dimension).to_string(),
                a.to_string(),
                b.to_string(),
            ]);
        }
        if windowed {
            for (slot, _) in Self::buckets(quota) {
                let log = FIXED_KEYS + BUCKETS.len() + slot;
                call.keys.push(self.inner.keys[log].clone());
            }
        }
        self.push_tail(&mut call, tail);
        call.keys.extend(tenant_keys);
        call
    }

    /// Appends `tail`.
    fn push_tail(&self, call: &mut Call, tail: Tail<'_>) {
        call.args.extend([
            tail.lease_limit.to_string(),
            tail.requests.to_string(),
            tail.id.to_owned(),
            self.inner.lease.as_micros().to_string(),
            tail.extra_us.to_string(),
            tail.batch_id.to_owned(),
            tail.max_wait
                .map_or("-1".to_owned(), |w| w.as_micros().to_string()),
        ]);
    }

    /// One `batch` call reserving `requests` in order, none scheduled further than
    /// `max_wait` ahead.
    pub(super) fn batch_call<'a>(
        &self,
        quota: &Quota,
        batch_id: &str,
        max_wait: Option<Duration>,
        requests: impl ExactSizeIterator<Item = &'a Pending>,
    ) -> Call {
        let epoch = self.inner.epoch.locked().unwrap_or(0);
        let tail = Tail {
            lease_limit: quota.concurrency.map_or(0, u64::from),
            batch_id,
            max_wait,
            extra_us: u128::from(epoch),
            ..Tail::default()
        };
        self.requests_call(quota, "batch", tail, requests)
    }

    /// Gives up batch `batch_id` of `requests`, sent under `quota` without an answer: it
    /// never runs after this, and what it took goes back (its charges only if `refund`).
    pub(super) fn void_call<'a>(
        &self,
        quota: &Quota,
        batch_id: &str,
        refund: bool,
        requests: impl ExactSizeIterator<Item = &'a Pending>,
    ) -> Call {
        let tail = Tail {
            lease_limit: quota.concurrency.map_or(0, u64::from),
            batch_id,
            extra_us: u128::from(refund),
            ..Tail::default()
        };
        self.requests_call(quota, "void", tail, requests)
    }

    /// A call in `mode` about `requests`, each with its slots, id and charge per bucket.
    fn requests_call<'a>(
        &self,
        quota: &Quota,
        mode: &str,
        tail: Tail<'_>,
        requests: impl ExactSizeIterator<Item = &'a Pending>,
    ) -> Call {
        // A server that counts tokens after the response admits while the bucket is not full.
        let after_response = quota.charged == Charged::AfterResponse;
        let per_bucket = |d: Dimension| (i128::from(after_response && d.counts_tokens()), 0);
        // The tenant cap buckets the requests name, each once, numbered from 1.
        let requests: Vec<&Pending> = requests.collect();
        let mut tenant_keys: Vec<Arc<str>> = Vec::new();
        let mut numbers: HashMap<&str, usize> = HashMap::new();
        for pending in &requests {
            for (_, key) in pending.cap.iter().flat_map(|cap| &cap.keys) {
                numbers.entry(key).or_insert_with(|| {
                    tenant_keys.push(key.clone());
                    tenant_keys.len()
                });
            }
        }
        let mut call = self.tenant_bucket_call(quota, mode, per_bucket, tail, tenant_keys);
        let buckets = Self::buckets(quota).count();
        call.args.reserve(1 + requests.len() * (3 + buckets));
        call.args.push(requests.len().to_string());
        for pending in requests {
            let takes_slot = slot_cap(quota, &pending.cost).is_some();
            call.args.push(if takes_slot {
                pending.cost.requests.to_string()
            } else {
                "0".to_owned()
            });
            call.args.push(pending.lease_id.clone());
            for (_, dimension) in Self::buckets(quota) {
                call.args.push(dimension.charge(&pending.cost).to_string());
            }
            let Some(cap) = &pending.cap else {
                call.args.push("0".to_owned());
                continue;
            };
            call.args.push(cap.keys.len().to_string());
            for (key, capacity, period, charge) in cap.charges(&pending.cost) {
                let number = numbers[&**key] as u64;
                call.args
                    .extend([number, capacity, period, charge].map(|v| v.to_string()));
            }
        }
        call
    }

    /// When `cost` would be admitted if it asked now with nobody ahead of it (`peek`: nothing
    /// is written).
    /// With `cap`, the tenant's cap buckets are asked too.
    pub(super) fn peek_call(&self, quota: &Quota, cost: &Cost, cap: Option<&TenantCap>) -> Call {
        let tail = Tail {
            lease_limit: quota.concurrency.map_or(0, u64::from),
            ..Tail::default()
        };
        let after_response = quota.charged == Charged::AfterResponse;
        let per_bucket = |d: Dimension| (i128::from(after_response && d.counts_tokens()), 0);
        let tenant_keys = cap.map_or_else(Vec::new, TenantCap::key_names);
        let mut call = self.tenant_bucket_call(quota, "peek", per_bucket, tail, tenant_keys);
        let takes_slot = slot_cap(quota, cost).is_some();
        call.args.push("1".to_owned());
        call.args.push(if takes_slot {
            cost.requests.to_string()
        } else {
            "0".to_owned()
        });
        call.args.push(String::new());
        for (_, dimension) in Self::buckets(quota) {
            call.args.push(dimension.charge(cost).to_string());
        }
        if let Some(cap) = cap {
            call.args.push(cap.keys.len().to_string());
            for (number, (_, capacity, period, charge)) in cap.charges(cost).enumerate() {
                let number = number as u64 + 1;
                call.args
                    .extend([number, capacity, period, charge].map(|v| v.to_string()));
            }
        }
        call
    }

    /// Moves reservation `id`'s charge from `from` to `to` under `quota` (the limits it was
    /// charged with) and frees its `slots`. Never sent twice: it is a signed change.
    /// `start_us`, its start on the server's clock, places the change in the window logs.
    /// The move is made on `cap`'s buckets too, when the reservation was for a capped tenant.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn adjust_call(
        &self,
        quota: &Quota,
        from: &Cost,
        to: &Cost,
        id: &str,
        slots: Option<u32>,
        start_us: Option<u64>,
        cap: Option<&TenantCap>,
    ) -> Call {
        let tail = Tail {
            lease_limit: u64::from(slots.is_some()),
            requests: slots.unwrap_or(0),
            id,
            // The script reads it as the reservation's start.
            max_wait: start_us.map(Duration::from_micros),
            ..Tail::default()
        };
        let tenant_keys = cap.map_or_else(Vec::new, TenantCap::key_names);
        let mut call = self.tenant_bucket_call(
            quota,
            "adjust",
            |d| (d.charge(from).into(), d.charge(to).into()),
            tail,
            tenant_keys,
        );
        if let Some(cap) = cap {
            call.args.push(cap.keys.len().to_string());
            for (number, (dimension, _)) in cap.keys.iter().enumerate() {
                let (capacity, period) = (
                    cap.quota.capacity(*dimension).unwrap_or(1),
                    window_us(&cap.quota, *dimension),
                );
                let (from, to) = (dimension.charge(from), dimension.charge(to));
                call.args
                    .extend([number as u64 + 1, capacity, period, from, to].map(|v| v.to_string()));
            }
        }
        call.once = true;
        call
    }

    /// Holds everyone for `duration`.
    pub(super) fn hold_call(&self, duration: Duration) -> Call {
        let mut call = self.fixed_call(0);
        call.args.push("hold".to_owned());
        let tail = Tail {
            extra_us: duration.as_micros(),
            ..Tail::default()
        };
        self.push_tail(&mut call, tail);
        call
    }

    /// Tightens the fallback now and builds the script call for Redis: `dimension` at least
    /// `used` units in use, read against `mark` (the request's start and the units in use
    /// just after its charge) when known, and counted no later than `processing` before now
    /// when the server says. The fallback, a share of each limit, takes that share of the
    /// fleet's count: the same part of it in use (the whole count would keep it full for
    /// 1/share windows after Redis went away).
    pub(super) fn tighten_call(
        &self,
        quota: &Quota,
        dimension: Dimension,
        used: u64,
        mark: Option<(u64, u64)>,
        processing: Option<Duration>,
    ) -> Call {
        self.inner
            .fallback
            .tighten(dimension, self.fallback_part(used));
        // -1: leave the other buckets alone; no mark.
        let at_mark = mark.map_or(-1, |(_, level)| i128::from(level));
        let per_bucket = |d| {
            if d == dimension {
                (used.into(), at_mark)
            } else {
                (-1, -1)
            }
        };
        let tail = Tail {
            extra_us: mark.map_or(0, |(start, _)| u128::from(start)),
            // The script reads it as the server's processing time.
            max_wait: processing,
            ..Tail::default()
        };
        self.bucket_call(quota, "tighten", per_bucket, tail)
    }

    /// Keeps reservation `id`'s `requests` slots for another lease time; with `add`, adds
    /// them if the store lost them.
    pub(super) fn renew_call(&self, id: &str, requests: u32, add: bool) -> Call {
        let mut call = self.fixed_call(0);
        call.args.push("renew".to_owned());
        let tail = Tail {
            lease_limit: 1,
            requests,
            id,
            extra_us: u128::from(add),
            ..Tail::default()
        };
        self.push_tail(&mut call, tail);
        call
    }

    /// Charges `units` per bucket (spent where Redis did not see it) as use from now on, up to
    /// a full bucket (a server never counts more than its limit in use); a negative amount
    /// gives back. A charge may be sent again after a dropped connection (counted twice, it
    /// only fills the bucket sooner: it is the first call after an outage, and must not wait
    /// another probe interval for the reconnection); a refund never is.
    pub(super) fn write_back_call(&self, quota: &Quota, units: &Units) -> Call {
        let per_bucket = |d| {
            let units = i128::from(units_of(units, d));
            (-units.min(0), units.max(0))
        };
        let tail = Tail {
            extra_us: 1,
            ..Tail::default()
        };
        let mut call = self.bucket_call(quota, "adjust", per_bucket, tail);
        call.once = units.iter().any(|&u| u < 0);
        call
    }

    /// Rescales the buckets whose capacity or window differ between `old` and `new`, keeping
    /// their units in use; `None` when none does.
    pub(super) fn requota_call(&self, old: &Quota, new: &Quota) -> Option<Call> {
        let before = |d: Dimension| {
            old.capacity(d)
                .filter(|_| window_us(old, d) > 0)
                .map(|capacity| (capacity, window_us(old, d)))
        };
        let scale = |d: Dimension| (new.capacity(d).unwrap_or(1), window_us(new, d));
        let changed = Self::bucket_dimensions(new)
            .into_iter()
            .any(|d| before(d).is_some_and(|b| b != scale(d)));
        if !changed {
            return None;
        }
        let per_bucket = |d| {
            // A bucket new to the limits has nothing in use to keep.
            let (capacity, window) = before(d).unwrap_or_else(|| scale(d));
            (capacity.into(), window.into())
        };
        Some(self.bucket_call(new, "requota", per_bucket, Tail::default()))
    }
}
