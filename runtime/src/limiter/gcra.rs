//! The bucket arithmetic: one GCRA state per dimension, pure and clock-free.
//!
//! Time is integer nanoseconds since the limiter's origin. A dimension refills `capacity`
//! units per window of `window_ns`; its theoretical arrival time (TAT) minus now is the part of
//! the window in use, and a request fits when that plus its share stays within one window.
//!
//! To keep the hot path free of division and every result exact, each bucket measures time in
//! `ns × capacity`: a request of `u` units then occupies exactly `u × window_ns` of it, refunds
//! and debits move the TAT by exact differences, and only a wait (rare) divides, rounding up.
//! A TAT below now means a full bucket: readers take `max(tat, now)`, which floors refunds.
//! The same arithmetic can run in a shared store (see the Redis backend).

use std::time::Duration;

use crate::units::cost::{Cost, Dimension};

use crate::units::quota::Quota;

mod reports;
use reports::RecentGaps;

/// The dimensions that are buckets (concurrency is a counter, handled by the limiter), in the
/// order the shared store sends their keys.
pub(crate) const BUCKETS: [Dimension; 8] = [
    Dimension::RequestsPerMinute,
    Dimension::TokensPerMinute,
    Dimension::InputTokensPerMinute,
    Dimension::OutputTokensPerMinute,
    Dimension::RequestsPerDay,
    Dimension::TokensPerDay,
    Dimension::MinInterval,
    Dimension::RequestsPerSecond,
];

#[derive(Clone, Copy, Debug)]
struct Bucket {
    dimension: Dimension,
    /// Its index in [`BUCKETS`] (where a [`Mark`] keeps its ledger).
    slot: usize,
    /// Units the bucket holds when full (limit times headroom).
    capacity: u64,
    /// Nanoseconds over which `capacity` units refill.
    window_ns: u64,
    /// `capacity × window_ns`: one full window, in scaled time.
    full: u128,
    /// Theoretical arrival time in scaled time (`ns × capacity`).
    tat: u128,
    /// Units charged in all, settles included, header tightening not (wrapping: only
    /// differences between two readings mean anything).
    ledger: u64,
    /// What the server's latest reports implied beyond this bucket's level.
    gaps: RecentGaps,
}

impl Bucket {
    fn new(dimension: Dimension, slot: usize, capacity: u64, window_ns: u64, now: u64) -> Self {
        let mut bucket = Bucket {
            dimension,
            slot,
            capacity,
            window_ns,
            full: u128::from(capacity) * u128::from(window_ns),
            tat: 0,
            ledger: 0,
            gaps: RecentGaps::default(),
        };
        bucket.tat = bucket.scaled(now);
        bucket
    }

    #[inline]
    fn scaled(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.capacity)
    }

    /// Scaled time that `units` occupy.
    #[inline]
    fn share(&self, units: u64) -> u128 {
        u128::from(units) * u128::from(self.window_ns)
    }

    /// Scaled time in use at `now` (units × window_ns).
    fn used(&self, now: u64) -> u128 {
        self.tat.saturating_sub(self.scaled(now))
    }

    /// Units in use at `now`, rounded up.
    fn level(&self, now: u64) -> u64 {
        let units = self.used(now).div_ceil(u128::from(self.window_ns));
        u64::try_from(units).unwrap_or(u64::MAX)
    }
}

/// Where the buckets stood just after a reservation was charged: when, and each dimension's
/// ledger (units charged in all). A response's rate-limit headers give the server's count from
/// about that moment; the ledger then says what this limiter charged since, which the server
/// had not counted yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// When (ns since the limiter's origin).
    at: u64,
    /// Each bucket's ledger, by its index in [`BUCKETS`].
    ledgers: [u64; BUCKETS.len()],
    /// The buckets (bits by index in [`BUCKETS`]) that were full before this charge: their
    /// refill restarted here, the server's only when the request reached it.
    started: u8,
}

impl Mark {
    /// The latest moment the server can have counted the request reserved at this mark, for
    /// an answer at `now` from a server that spent `processing` on it: the rest of the round
    /// trip was on the wire, and the count came after the outbound part. Without a processing
    /// time, the answer itself (the count may have come as late as that).
    pub(crate) fn counted_by(&self, now: u64, processing: Option<Duration>) -> u64 {
        let now = now.max(self.at);
        match processing {
            Some(processing) => now.saturating_sub(duration_ns(processing)).max(self.at),
            None => now,
        }
    }

    /// The mark as if the reservation had charged `to` instead of `from`: the settle of the
    /// reservation itself is part of what the server counted, not something charged since.
    pub(crate) fn settled(mut self, from: &Cost, to: &Cost) -> Mark {
        for (ledger, dimension) in self.ledgers.iter_mut().zip(BUCKETS) {
            *ledger = ledger
                .wrapping_add(dimension.charge(to))
                .wrapping_sub(dimension.charge(from));
        }
        self
    }
}

/// What a reservation attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It fits now.
    Admit,
    /// It fits at this time (ns since origin), if nothing else is charged first.
    WaitUntil(u64),
    /// It can never fit this dimension.
    TooLarge {
        dimension: Dimension,
        requested: u64,
        capacity: u64,
    },
}

/// The GCRA state of every bucket dimension of one limit family.
#[derive(Clone, Debug, Default)]
pub(crate) struct Buckets {
    buckets: Vec<Bucket>,
}

impl Buckets {
    pub(crate) fn new(quota: &Quota) -> Self {
        let mut buckets = Buckets::default();
        buckets.set_quota(quota, 0);
        buckets
    }

    /// Replaces the limits, keeping the units in use on every dimension that stays limited.
    pub(crate) fn set_quota(&mut self, quota: &Quota, now: u64) {
        let old = std::mem::take(&mut self.buckets);
        for (slot, dimension) in BUCKETS.into_iter().enumerate() {
            let Some(capacity) = quota.capacity(dimension) else {
                continue;
            };
            let window_ns = match dimension {
                Dimension::MinInterval => quota.min_interval.map_or(0, duration_ns),
                _ => dimension.window().map_or(0, duration_ns),
            };
            if window_ns == 0 {
                continue;
            }
            let mut bucket = Bucket::new(dimension, slot, capacity, window_ns, now);
            if let Some(previous) = old.iter().find(|b| b.dimension == dimension) {
                // Keep the units in use (scaled by window_ns, so a new interval rescales).
                let used =
                    previous.used(now) * u128::from(window_ns) / u128::from(previous.window_ns);
                bucket.tat += used;
                bucket.ledger = previous.ledger;
            }
            self.buckets.push(bucket);
        }
    }

    /// When `cost` fits every dimension at once, without charging it.
    #[inline]
    pub(crate) fn decide(&self, cost: &Cost, now: u64) -> Decision {
        let mut ready = now;
        for bucket in &self.buckets {
            let units = bucket.dimension.charge(cost);
            if units == 0 {
                continue;
            }
            if units > bucket.capacity {
                return Decision::TooLarge {
                    dimension: bucket.dimension,
                    requested: units,
                    capacity: bucket.capacity,
                };
            }
            let fits_at = (bucket.tat + bucket.share(units)).saturating_sub(bucket.full);
            if fits_at > bucket.scaled(now) {
                let at = fits_at.div_ceil(u128::from(bucket.capacity));
                ready = ready.max(u64::try_from(at).unwrap_or(u64::MAX));
            }
        }
        if ready <= now {
            Decision::Admit
        } else {
            Decision::WaitUntil(ready)
        }
    }

    /// The first dimension `cost` can never fit, whatever the state.
    pub(crate) fn oversized(&self, cost: &Cost) -> Option<Decision> {
        self.buckets.iter().find_map(|bucket| {
            let units = bucket.dimension.charge(cost);
            (units > bucket.capacity).then_some(Decision::TooLarge {
                dimension: bucket.dimension,
                requested: units,
                capacity: bucket.capacity,
            })
        })
    }

    /// Charges `cost` on every dimension at `now` (after `decide` said it fits) and returns
    /// where the buckets stand just after.
    #[inline]
    pub(crate) fn charge(&mut self, cost: &Cost, now: u64) -> Mark {
        let mut mark = Mark {
            at: now,
            ledgers: [0; BUCKETS.len()],
            started: 0,
        };
        for bucket in &mut self.buckets {
            let units = bucket.dimension.charge(cost);
            if units > 0 {
                let floor = bucket.scaled(now);
                if bucket.tat <= floor {
                    mark.started |= 1 << bucket.slot;
                }
                bucket.tat = bucket.tat.max(floor) + bucket.share(units);
                bucket.ledger = bucket.ledger.wrapping_add(units);
            }
            mark.ledgers[bucket.slot] = bucket.ledger;
        }
        mark
    }

    /// Charges `cost` on every dimension if it fits all of them at `now`; all or nothing.
    #[cfg(test)]
    fn try_charge(&mut self, cost: &Cost, now: u64) -> Decision {
        let decision = self.decide(cost, now);
        if decision == Decision::Admit {
            self.charge(cost, now);
        }
        decision
    }

    /// Moves every dimension from having charged `from` to having charged `to` at `now`: a
    /// refund when `to` is smaller, a debit (possibly into debt) when larger.
    ///
    /// Both start from the level at `now` (`max(tat, now)`): a debit on a bucket that has
    /// refilled since the charge must land in full, not vanish into the refill, and a refund
    /// stops at a full bucket.
    #[inline]
    pub(crate) fn adjust(&mut self, from: &Cost, to: &Cost, now: u64) {
        for bucket in &mut self.buckets {
            let (from, to) = (bucket.dimension.charge(from), bucket.dimension.charge(to));
            if from == to {
                continue;
            }
            bucket.ledger = bucket.ledger.wrapping_add(to).wrapping_sub(from);
            let (before, after) = (bucket.share(from), bucket.share(to));
            let floor = bucket.scaled(now);
            let level = bucket.tat.max(floor);
            bucket.tat = if after > before {
                level.saturating_add(after - before)
            } else {
                level.saturating_sub(before - after).max(floor)
            };
        }
    }

    /// Raises the units in use on `dimension` at `now` to at least `used`.
    pub(crate) fn tighten(&mut self, dimension: Dimension, used: u64, now: u64) {
        if let Some(bucket) = self.buckets.iter_mut().find(|b| b.dimension == dimension) {
            let floor = bucket.scaled(now) + bucket.share(used);
            bucket.tat = bucket.tat.max(floor);
        }
    }

    /// Moves the units in use on `dimension` toward what the server reported in use when it
    /// counted a request reserved at `mark`, answered at `now`, having counted it no later
    /// than `counted_by` (see [`Mark::counted_by`]; the mark's own time if unknown).
    ///
    /// - **The server's count.** The server's bucket has refilled since it counted, as this
    ///   one has, and has yet to count what this limiter charged after the mark; so it is now
    ///   at `reported`, refilled since the count, plus the ledger's growth since the mark.
    ///   The count came between the mark and `counted_by`, which bounds the refill both ways.
    ///   Requests charged after the mark that overtook it on the way were in the count already
    ///   and are counted twice: one report can overstate the server by a whole request in a
    ///   burst. So the level moves only when the latest [`REPORTS_TO_AGREE`](reports::REPORTS_TO_AGREE) reports agree: up
    ///   by the least they put the server ahead, or back down by the least they put it behind,
    ///   never below what this limiter charged itself.
    /// - **A bucket that was full at the mark** restarted its refill there, while the server's
    ///   restarted when the request arrived, no later than `counted_by`. The refill between
    ///   the two is charged once, at this answer, unless the bucket is full again (later
    ///   reports can take back what it overstated).
    ///
    /// Returns the units in use before and the units the report implies (at the latest count),
    /// when `dimension` is a limited bucket.
    pub(crate) fn reconcile(
        &mut self,
        dimension: Dimension,
        reported: u64,
        mark: &Mark,
        counted_by: u64,
        now: u64,
    ) -> Option<(u64, u64)> {
        let bucket = self.buckets.iter_mut().find(|b| b.dimension == dimension)?;
        let floor = bucket.scaled(now);
        let before = bucket.level(now);
        let (earliest, latest) = (mark.at.min(now), counted_by.clamp(mark.at, now));
        if mark.started & (1 << bucket.slot) != 0 && bucket.tat > floor {
            let transit = bucket.scaled(latest) - bucket.scaled(earliest);
            bucket.tat += transit;
            bucket.gaps.moved(transit as i128);
        }
        let level = bucket.tat.max(floor);
        let since = bucket.ledger.wrapping_sub(mark.ledgers[bucket.slot]) as i64;
        let implied = |counted_at: u64| {
            let counted = bucket.scaled(counted_at) + bucket.share(reported);
            let now_at = if since >= 0 {
                counted + bucket.share(since.unsigned_abs())
            } else {
                counted.saturating_sub(bucket.share(since.unsigned_abs()))
            };
            now_at.max(floor)
        };
        let (at_least, at_most) = (implied(earliest), implied(latest));
        let step = bucket.gaps.record(
            at_least as i128 - level as i128,
            at_most as i128 - level as i128,
        );
        bucket.tat = (level as i128 + step) as u128;
        let implied_used = (at_most - floor).div_ceil(u128::from(bucket.window_ns));
        Some((before, u64::try_from(implied_used).unwrap_or(u64::MAX)))
    }

    /// Units in use on `dimension` at `now`, if it is a limited bucket.
    pub(crate) fn level(&self, dimension: Dimension, now: u64) -> Option<u64> {
        self.buckets
            .iter()
            .find(|b| b.dimension == dimension)
            .map(|b| b.level(now))
    }
}

#[inline]
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::reports::REPORTS_TO_AGREE;
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn thirty_thousand_tpm_schedules_ten_thousand_token_requests_twenty_seconds_apart() {
        let mut b = Buckets::new(&Quota::default().tpm(30_000));
        let cost = Cost::request(10_000, 0);
        for _ in 0..3 {
            assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        }
        assert_eq!(b.try_charge(&cost, 0), Decision::WaitUntil(20 * SEC));
        assert_eq!(b.try_charge(&cost, 20 * SEC), Decision::Admit);
        assert_eq!(b.try_charge(&cost, 20 * SEC), Decision::WaitUntil(40 * SEC));
    }

    #[test]
    fn one_unit_over_capacity_is_too_large() {
        let b = Buckets::new(&Quota::default().tpm(30_000));
        assert_eq!(
            b.decide(&Cost::request(30_001, 0), 0),
            Decision::TooLarge {
                dimension: Dimension::TokensPerMinute,
                requested: 30_001,
                capacity: 30_000
            }
        );
    }

    #[test]
    fn full_refund_restores_the_state_exactly() {
        let quota = Quota::default().tpm(27_000).rpm(7);
        let mut b = Buckets::new(&quota);
        let cost = Cost::request(1_234, 567);
        assert_eq!(b.try_charge(&cost, 5), Decision::Admit);
        b.adjust(&cost, &Cost::default(), 5);
        assert_eq!(b.level(Dimension::TokensPerMinute, 5), Some(0));
        assert_eq!(b.level(Dimension::RequestsPerMinute, 5), Some(0));
    }

    #[test]
    fn a_debit_after_the_bucket_refilled_lands_in_full() {
        // 600 of 6,000 TPM charged at 0; at 30 s the bucket is full again. A settle that
        // reports 1,000 more tokens than reserved must leave exactly 1,000 in use, not fold
        // the debit into the refill.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let cost = Cost::request(600, 0);
        assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        b.adjust(&cost, &Cost::request(1_600, 0), 30 * SEC);
        assert_eq!(b.level(Dimension::TokensPerMinute, 30 * SEC), Some(1_000));
    }

    #[test]
    fn a_refund_stops_at_a_full_bucket() {
        // A refund larger than what is still in use empties the bucket and no more: a later
        // charge starts from full, not from credit.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let cost = Cost::request(3_000, 0);
        assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        b.adjust(&cost, &Cost::default(), 20 * SEC);
        assert_eq!(b.level(Dimension::TokensPerMinute, 20 * SEC), Some(0));
        b.charge(&Cost::request(6_000, 0), 20 * SEC);
        assert_eq!(
            b.decide(&Cost::request(1, 0), 20 * SEC),
            Decision::WaitUntil(20 * SEC + 10_000_000)
        );
    }

    #[test]
    fn changing_the_quota_keeps_the_units_in_use() {
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        assert_eq!(b.try_charge(&Cost::request(30_000, 0), 0), Decision::Admit);
        b.set_quota(&Quota::default().tpm(30_000), 0);
        assert_eq!(b.level(Dimension::TokensPerMinute, 0), Some(30_000));
        assert_eq!(
            b.decide(&Cost::request(1, 0), 0),
            Decision::WaitUntil(2_000_000)
        );
    }

    /// Reports `used` three times (what it takes to raise the level) against `mark`.
    fn report_thrice(b: &mut Buckets, used: u64, mark: &Mark, now: u64) -> Option<(u64, u64)> {
        let tpm = Dimension::TokensPerMinute;
        let first = b.reconcile(tpm, used, mark, mark.at, now);
        b.reconcile(tpm, used, mark, mark.at, now);
        b.reconcile(tpm, used, mark, mark.at, now);
        first
    }

    #[test]
    fn reconcile_adds_what_was_charged_since_the_mark_to_the_servers_count() {
        // 6,000 TPM: 100 units a second. A reservation of 1,000 at 0 is marked; 500 more are
        // charged at 1 s. At 2 s the server reports 1,300 in use as of the mark (it counts 300
        // this limiter did not): implied now = 1,300 − 200 refilled + 500 = 1,600, where the
        // local level is 1,500 − 200 = 1,300.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let mark = b.charge(&Cost::request(1_000, 0), 0);
        b.charge(&Cost::request(500, 0), SEC);
        let tpm = Dimension::TokensPerMinute;
        assert_eq!(
            report_thrice(&mut b, 1_300, &mark, 2 * SEC),
            Some((1_300, 1_600))
        );
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_600));
        // The same report again changes nothing. Lower ones take the raise back, but never
        // below what this limiter charged itself.
        assert_eq!(
            report_thrice(&mut b, 1_300, &mark, 2 * SEC),
            Some((1_600, 1_600))
        );
        report_thrice(&mut b, 1_200, &mark, 2 * SEC);
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_500));
        report_thrice(&mut b, 0, &mark, 2 * SEC);
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_300));
    }

    #[test]
    fn the_level_rises_by_the_least_gap_once_three_reports_agree() {
        // 6,000 TPM, nothing charged after the mark, 400 in use. Reports of 900 and 500 raise
        // nothing (two reports); 700 completes three, all ahead: the level rises by the least
        // gap (100). A report at the new level breaks the agreement; three more agreeing on
        // 1,100 raise it by their least gap again.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let mark = b.charge(&Cost::request(400, 0), 0);
        let tpm = Dimension::TokensPerMinute;
        let mut report = |used| {
            b.reconcile(tpm, used, &mark, 0, 0)
                .map(|(before, _)| before)
        };
        assert_eq!(report(900), Some(400));
        assert_eq!(report(500), Some(400));
        assert_eq!(report(700), Some(400));
        assert_eq!(report(500), Some(500));
        assert_eq!(report(1_100), Some(500));
        assert_eq!(report(1_100), Some(500));
        assert_eq!(report(1_100), Some(500));
        assert_eq!(report(1_100), Some(1_100));
    }

    #[test]
    fn reconcile_leaves_the_reservations_own_settle_out_of_the_growth() {
        // The reservation settled 400 under its estimate; the server reported its count with
        // the real charge in it. Counting the refund as "charged since" would undercount.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let reserved = Cost::request(1_000, 0);
        let actual = Cost::request(600, 0);
        let mark = b.charge(&reserved, 0);
        b.adjust(&reserved, &actual, SEC);
        let mark = mark.settled(&reserved, &actual);
        let tpm = Dimension::TokensPerMinute;
        assert_eq!(report_thrice(&mut b, 600, &mark, SEC), Some((500, 500)));
        assert_eq!(b.level(tpm, SEC), Some(500));
        assert_eq!(report_thrice(&mut b, 900, &mark, SEC), Some((500, 800)));
        assert_eq!(b.level(tpm, SEC), Some(800));
    }

    #[test]
    fn a_bucket_full_at_the_mark_is_charged_the_requests_time_on_the_wire_once() {
        // 60,000 TPM: 1 unit a millisecond. The first request (600) leaves a full bucket at 0
        // and reaches the server by 30 ms: the server's refill starts 30 ms later than this
        // one's, so its answer charges 30 units, once. The second reservation did not start
        // the bucket: its answer charges nothing for it.
        let ms = 1_000_000;
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let tpm = Dimension::TokensPerMinute;
        let first = b.charge(&Cost::request(600, 0), 0);
        let second = b.charge(&Cost::request(600, 0), 0);
        assert_eq!(b.level(tpm, 230 * ms), Some(970));
        b.reconcile(tpm, 0, &first, 30 * ms, 230 * ms);
        assert_eq!(b.level(tpm, 230 * ms), Some(1_000));
        b.reconcile(tpm, 0, &second, 30 * ms, 230 * ms);
        assert_eq!(b.level(tpm, 230 * ms), Some(1_000));
        // Once the bucket is full again, the difference no longer matters.
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let first = b.charge(&Cost::request(600, 0), 0);
        b.reconcile(tpm, 0, &first, 30 * ms, 700 * ms);
        assert_eq!(b.level(tpm, 700 * ms), Some(0));
    }

    #[test]
    fn moving_down_takes_the_distance_every_report_guarantees_at_its_latest_count() {
        // 60,000 TPM (1 unit a ms), 5,000 charged at 0 and marked (behind another charge, so
        // the mark did not start the bucket). Three reports of 6,000 raise the level by 1,000
        // to 5,900 at 100 ms. Then reports of 5,500 counted at most 50 ms after the mark: the
        // server is at least 500 behind (counted at the mark) and surely 450 behind (counted
        // at 50 ms); the level comes down by 450.
        let ms = 1_000_000;
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let tpm = Dimension::TokensPerMinute;
        b.charge(&Cost::request(1, 0), 0);
        let mark = b.charge(&Cost::request(4_999, 0), 0);
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(tpm, 6_000, &mark, 0, 100 * ms);
        }
        assert_eq!(b.level(tpm, 100 * ms), Some(5_900));
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(tpm, 5_500, &mark, 50 * ms, 100 * ms);
        }
        assert_eq!(b.level(tpm, 100 * ms), Some(5_450));
        // Reports that put the server far behind take back the raise and no more.
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(tpm, 0, &mark, 50 * ms, 100 * ms);
        }
        assert_eq!(b.level(tpm, 100 * ms), Some(4_900));
    }

    #[test]
    fn a_count_is_no_later_than_the_round_trip_less_the_processing() {
        let mark = Buckets::new(&Quota::default().tpm(6_000)).charge(&Cost::request(1, 0), SEC);
        let ms = Duration::from_millis;
        assert_eq!(
            mark.counted_by(SEC + 230_000_000, Some(ms(200))),
            SEC + 30_000_000
        );
        assert_eq!(mark.counted_by(SEC + 230_000_000, None), SEC + 230_000_000);
        // A processing time longer than the round trip (clocks disagree) means no later
        // than the mark.
        assert_eq!(mark.counted_by(SEC + 100_000_000, Some(ms(200))), SEC);
    }

    #[test]
    fn reconcile_on_an_unlimited_dimension_is_none() {
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let mark = b.charge(&Cost::request(1, 0), 0);
        assert_eq!(
            b.reconcile(Dimension::RequestsPerMinute, 5, &mark, 0, 0),
            None
        );
    }

    #[test]
    fn headroom_scales_capacity_and_rate() {
        let b = Buckets::new(&Quota::default().tpm(30_000).headroom(0.5));
        assert!(matches!(
            b.decide(&Cost::request(15_001, 0), 0),
            Decision::TooLarge {
                capacity: 15_000,
                ..
            }
        ));
    }
}
