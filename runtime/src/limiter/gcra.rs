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

mod bucket;
use bucket::{Bucket, SLOTS};
pub(crate) use bucket::{Mark, Overcount};

mod window;
pub(crate) use window::Aligned;
use window::WindowLog;

/// The dimensions that are buckets: every one but concurrency (a counter, handled by the
/// limiter), in [`Dimension::ALL`]'s order, which is the order the shared store sends their keys.
pub(crate) const BUCKETS: [Dimension; SLOTS] = {
    let mut buckets = [Dimension::RequestsPerMinute; SLOTS];
    let (mut i, mut n) = (0, 0);
    while i < Dimension::ALL.len() {
        if !matches!(Dimension::ALL[i], Dimension::Concurrency) {
            buckets[n] = Dimension::ALL[i];
            n += 1;
        }
        i += 1;
    }
    buckets
};

impl Mark {
    /// When the charge was made (ns since the limiter's origin).
    pub(crate) fn at(&self) -> u64 {
        self.at
    }

    /// The mark as if the reservation had charged `to` instead of `from`: the settle of the
    /// reservation itself is part of what the server counted, not something charged since.
    pub(crate) fn settled(mut self, from: &Cost, to: &Cost) -> Mark {
        for (ledger, dimension) in self.ledgers.iter_mut().zip(BUCKETS) {
            *ledger = ledger
                .wrapping_add(dimension.charge(to))
                .wrapping_sub(dimension.charge(from));
        }
        self.prompts = self
            .prompts
            .wrapping_add(to.input_tokens)
            .wrapping_sub(from.input_tokens);
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
    /// Witnesses of the prompt buckets (TPM, ITPM) at the server's own rate: what the charge
    /// correction learns from (see [`reconcile`](Buckets::reconcile)).
    witnesses: Vec<Bucket>,
    /// Prompt tokens charged in all, settles included (wrapping, like the buckets' ledgers):
    /// what the server's overcount is measured against, since only prompts are estimated.
    prompts: u64,
    /// With [`Window::Sliding`](crate::units::quota::Window::Sliding), one log per bucket: at
    /// most its capacity in any window as well.
    windows: Vec<WindowLog>,
    /// With [`Window::Fixed`](crate::units::quota::Window::Fixed), where the server's
    /// windows start, once an answer has shown it: the per-minute logs count per window.
    alignment: Option<Aligned>,
    /// The buckets (bits by slot) whose log is aligned: the log alone decides for them (the
    /// server admits its whole limit again at each boundary, whatever a bucket would say).
    aligned_slots: u8,
    /// With [`Charged::AfterResponse`](crate::units::quota::Charged::AfterResponse): a token
    /// bucket admits while it is not full, and no request is too large for it.
    after_response: bool,
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
        let old_witnesses = std::mem::take(&mut self.witnesses);
        let old_windows = std::mem::take(&mut self.windows);
        let sliding = quota.window != crate::units::quota::Window::Continuous;
        self.after_response = quota.charged == crate::units::quota::Charged::AfterResponse;
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
            let previous = old.iter().find(|b| b.dimension == dimension);
            if sliding && dimension != Dimension::MinInterval {
                let log = WindowLog::new(dimension, capacity, window_ns);
                let log = match old_windows.iter().find(|w| w.dimension == dimension) {
                    Some(previous) => log.after(Some(previous)),
                    // What the bucket has in use counts as charged now: it may have been
                    // sent into the server's current window.
                    None => log.seeded(previous.map_or(0, |b| b.level(now)), now),
                };
                self.windows.push(log);
            }
            let bucket =
                Bucket::new(dimension, slot, capacity, window_ns, now).after(previous, now);
            if matches!(
                dimension,
                Dimension::TokensPerMinute | Dimension::InputTokensPerMinute
            ) {
                let limit = quota.limit(dimension).unwrap_or(capacity);
                let previous = old_witnesses.iter().find(|b| b.dimension == dimension);
                self.witnesses.push(bucket.witness(limit, previous, now));
            }
            self.buckets.push(bucket);
        }
        self.apply_alignment(quota.window == crate::units::quota::Window::Fixed);
    }

    /// Aligns the per-minute logs to the server's fixed windows, `boundary` being one of
    /// their starts (ns since the origin, the latest it can be) and `guard` how long before a
    /// boundary a request may be sent and still reach the server after it. Only with
    /// [`Window::Fixed`](crate::units::quota::Window::Fixed); a later alignment replaces it.
    pub(crate) fn align(&mut self, aligned: Aligned, fixed: bool) {
        self.alignment = Some(aligned);
        self.apply_alignment(fixed);
    }

    fn apply_alignment(&mut self, fixed: bool) {
        self.aligned_slots = 0;
        let minute = duration_ns(Duration::from_secs(60));
        for log in &mut self.windows {
            let aligned = self.alignment.filter(|_| fixed && log.window_ns == minute);
            log.align(aligned);
            if log.is_aligned() {
                if let Some(bucket) = self.buckets.iter().find(|b| b.dimension == log.dimension) {
                    self.aligned_slots |= 1 << bucket.slot;
                }
            }
        }
    }

    /// Whether the per-minute logs count per the server's fixed windows.
    pub(crate) fn aligned(&self) -> bool {
        self.aligned_slots != 0
    }

    /// When `cost` fits every dimension at once, without charging it.
    #[inline]
    pub(crate) fn decide(&self, cost: &Cost, now: u64) -> Decision {
        let mut ready = now;
        for bucket in &self.buckets {
            let mut units = bucket.dimension.charge(cost);
            if units == 0 {
                continue;
            }
            if self.after_response && bucket.dimension.counts_tokens() {
                // Admitted while not full; the charge may take it past.
                units = 1;
            }
            if units > bucket.capacity {
                return Decision::TooLarge {
                    dimension: bucket.dimension,
                    requested: units,
                    capacity: bucket.capacity,
                };
            }
            if self.aligned_slots & (1 << bucket.slot) != 0 {
                continue;
            }
            let fits_at = (bucket.tat + bucket.share(units)).saturating_sub(bucket.full);
            if fits_at > bucket.scaled(now) {
                let at = fits_at.div_ceil(u128::from(bucket.capacity));
                ready = ready.max(u64::try_from(at).unwrap_or(u64::MAX));
            }
        }
        for window in &self.windows {
            let mut units = window.dimension.charge(cost);
            if self.after_response && window.dimension.counts_tokens() {
                units = units.min(1);
            }
            if units > 0 {
                ready = ready.max(window.fits_at(units, now));
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
            if self.after_response && bucket.dimension.counts_tokens() {
                return None;
            }
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
        self.prompts = self.prompts.wrapping_add(cost.input_tokens);
        let mut mark = Mark {
            at: now,
            ledgers: [0; BUCKETS.len()],
            prompts: self.prompts,
            started: 0,
        };
        for bucket in &mut self.buckets {
            let units = bucket.dimension.charge(cost);
            if units > 0 && bucket.take(units, now) {
                mark.started |= 1 << bucket.slot;
            }
            mark.ledgers[bucket.slot] = bucket.ledger;
        }
        for witness in &mut self.witnesses {
            let units = witness.dimension.charge(cost);
            if units > 0 {
                witness.take(units, now);
            }
        }
        for window in &mut self.windows {
            let units = window.dimension.charge(cost);
            if units > 0 {
                window.take(units, now);
            }
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
    #[cfg(test)]
    pub(crate) fn adjust(&mut self, from: &Cost, to: &Cost, now: u64) {
        self.adjust_charged_at(from, to, None, now);
    }

    /// [`adjust`](Buckets::adjust) for a reservation charged at `charged_at` (ns since the
    /// origin, from its mark): the windows move that charge.
    #[inline]
    pub(crate) fn adjust_charged_at(
        &mut self,
        from: &Cost,
        to: &Cost,
        charged_at: Option<u64>,
        now: u64,
    ) {
        for window in &mut self.windows {
            let (from, to) = (window.dimension.charge(from), window.dimension.charge(to));
            if from != to {
                window.shift(from, to, charged_at, now);
            }
        }
        self.prompts = self
            .prompts
            .wrapping_add(to.input_tokens)
            .wrapping_sub(from.input_tokens);
        for bucket in self.buckets.iter_mut().chain(&mut self.witnesses) {
            let (from, to) = (bucket.dimension.charge(from), bucket.dimension.charge(to));
            if from != to {
                bucket.shift(from, to, now);
            }
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
    ///   burst. So the level moves only when the latest
    ///   [`REPORTS_TO_AGREE`](bucket::REPORTS_TO_AGREE) reports agree: up by the least they
    ///   put the server ahead, or back down by the least they put it behind, never below what
    ///   this limiter charged itself (its own charges, refilled since: what reports raised
    ///   ages out as the server's count of it does).
    /// - **A bucket that was full at the mark** restarted its refill there, while the server's
    ///   restarted when the request arrived, no later than `counted_by`. The refill between
    ///   the two is charged once, at this answer, unless the bucket is full again (later
    ///   reports can take back what it overstated).
    /// - **The charge correction** learns only from a witness of the prompt buckets (see
    ///   `Bucket::witness`): it refills at the server's own rate (a bucket kept below the
    ///   limit refills slower than the server and would take part of its excess for refill),
    ///   and moves up only where agreeing reports surely put the server ahead even had every
    ///   request charged after their mark overtaken it (in a burst over many connections,
    ///   most are: three reports in a row can agree on a double count).
    ///
    /// With `judge` (the report is one the estimate may be judged by), returns what the
    /// witness was just raised by, the evidence (see [`Overcount`]); `None` otherwise, and on
    /// a dimension that is not a limited bucket.
    pub(crate) fn reconcile(
        &mut self,
        dimension: Dimension,
        reported: u64,
        mark: &Mark,
        (counted_by, now): (u64, u64),
        judge: bool,
    ) -> Option<Overcount> {
        let bucket = self.buckets.iter_mut().find(|b| b.dimension == dimension)?;
        bucket.reconcile(reported, mark, counted_by, now);
        if !judge {
            return None;
        }
        let witness = self
            .witnesses
            .iter_mut()
            .find(|b| b.dimension == dimension)?;
        witness.witness_reconcile(reported, mark, counted_by, now)
    }

    /// Drops what only a family's buckets need (the witnesses of the charge correction) and
    /// spare room: for the many small sets of buckets of tenants' caps.
    pub(crate) fn make_lean(&mut self) {
        self.witnesses = Vec::new();
        self.buckets.shrink_to_fit();
        self.windows.shrink_to_fit();
    }

    /// Whether every bucket is full again at `now` (nothing in use, no window counting).
    pub(crate) fn full(&self, now: u64) -> bool {
        self.buckets.iter().all(|b| b.level(now) == 0)
            && self
                .windows
                .iter()
                .all(|w| w.fits_at(w.capacity(), now) <= now)
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
    use super::bucket::REPORTS_TO_AGREE;
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

    /// Reports `used` three times (what it takes to move the level) against `mark`, counted
    /// at the mark.
    fn report_thrice(b: &mut Buckets, used: u64, mark: &Mark, now: u64) {
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(Dimension::TokensPerMinute, used, mark, (mark.at, now), true);
        }
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
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_300));
        report_thrice(&mut b, 1_300, &mark, 2 * SEC);
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_600));
        // The same report again changes nothing. Lower ones take the raise back, but never
        // below what this limiter charged itself.
        report_thrice(&mut b, 1_300, &mark, 2 * SEC);
        assert_eq!(b.level(tpm, 2 * SEC), Some(1_600));
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
            b.reconcile(tpm, used, &mark, (0, 0), true);
            b.level(tpm, 0).unwrap()
        };
        let levels = [900, 500, 700, 500, 1_100, 1_100, 1_100].map(&mut report);
        assert_eq!(levels, [400, 400, 500, 500, 500, 500, 1_100]);
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
        report_thrice(&mut b, 600, &mark, SEC);
        assert_eq!(b.level(tpm, SEC), Some(500));
        report_thrice(&mut b, 900, &mark, SEC);
        assert_eq!(b.level(tpm, SEC), Some(800));
    }

    #[test]
    fn what_reports_raised_ages_out_with_the_refill() {
        // 60,000 TPM, 1 unit a ms. Another application took 20,000: agreeing reports raise
        // the level to 21,000. Two idle minutes later both sides are full again; a burst of
        // 40 × 1,000 is all this limiter's own, and reports that put the server far behind
        // (a gateway repeating a stale count) cannot take any of it back.
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let tpm = Dimension::TokensPerMinute;
        let mark = b.charge(&Cost::request(1_000, 0), 0);
        report_thrice(&mut b, 21_000, &mark, 0);
        assert_eq!(b.level(tpm, 0), Some(21_000));
        let later = 120 * SEC;
        let marks: Vec<Mark> = (0..40)
            .map(|_| b.charge(&Cost::request(1_000, 0), later))
            .collect();
        for mark in &marks {
            b.reconcile(tpm, 1_000, mark, (later, later), true);
        }
        assert_eq!(b.level(tpm, later), Some(40_000));
    }

    #[test]
    fn the_reports_outlive_a_change_of_limit() {
        // Reports that agree across a limit that alternates (two deployments behind one
        // gateway) still move the level.
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let tpm = Dimension::TokensPerMinute;
        let mark = b.charge(&Cost::request(1_000, 0), 0);
        for limit in [30_000, 60_000, 30_000] {
            b.set_quota(&Quota::default().tpm(limit), 0);
            b.reconcile(tpm, 3_000, &mark, (0, 0), false);
        }
        assert_eq!(b.level(tpm, 0), Some(3_000));
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
        b.reconcile(tpm, 0, &first, (30 * ms, 230 * ms), false);
        assert_eq!(b.level(tpm, 230 * ms), Some(1_000));
        b.reconcile(tpm, 0, &second, (30 * ms, 230 * ms), false);
        assert_eq!(b.level(tpm, 230 * ms), Some(1_000));
        // Once the bucket is full again, the difference no longer matters.
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        let first = b.charge(&Cost::request(600, 0), 0);
        b.reconcile(tpm, 0, &first, (30 * ms, 700 * ms), false);
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
            b.reconcile(tpm, 6_000, &mark, (0, 100 * ms), false);
        }
        assert_eq!(b.level(tpm, 100 * ms), Some(5_900));
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(tpm, 5_500, &mark, (50 * ms, 100 * ms), false);
        }
        assert_eq!(b.level(tpm, 100 * ms), Some(5_450));
        // Reports that put the server far behind take back the raise and no more.
        for _ in 0..REPORTS_TO_AGREE {
            b.reconcile(tpm, 0, &mark, (50 * ms, 100 * ms), false);
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
            b.reconcile(Dimension::RequestsPerMinute, 5, &mark, (0, 0), true),
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
