//! One bucket and the server's reports read against it: its GCRA state ([`Bucket`], the
//! arithmetic the module above describes), where the buckets stood when a request was reserved
//! ([`Mark`]), the latest reports and when they agree enough to move the level
//! ([`RecentGaps`]), and what they prove of the server's charging ([`Overcount`]; see
//! `Buckets::reconcile`).

use std::time::Duration;

use crate::units::cost::Dimension;

/// How many bucket dimensions there are (see [`BUCKETS`](super::BUCKETS)).
pub(super) const SLOTS: usize = 8;

/// One dimension's bucket.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    pub(super) dimension: Dimension,
    /// Its index in [`BUCKETS`](super::BUCKETS) (where a [`Mark`] keeps its ledger).
    pub(super) slot: usize,
    /// Units the bucket holds when full (limit times headroom).
    pub(super) capacity: u64,
    /// Nanoseconds over which `capacity` units refill.
    pub(super) window_ns: u64,
    /// `capacity × window_ns`: one full window, in scaled time.
    pub(super) full: u128,
    /// Theoretical arrival time in scaled time (`ns × capacity`).
    pub(super) tat: u128,
    /// The TAT of this limiter's own charges alone (charges and settles; no report, no
    /// tightening): where the bucket would stand had the server never been heard. Reports may
    /// take the level down to it, never below; what they raised above it ages out with the
    /// refill, as the server's own count of it does.
    own_tat: u128,
    /// Units charged in all, settles included, header tightening not (wrapping: only
    /// differences between two readings mean anything).
    pub(super) ledger: u64,
    /// What the server's latest reports implied beyond this bucket's level.
    gaps: RecentGaps,
    /// For a witness of the charge correction (see [`Bucket::witness`]), not a limit: when
    /// the server restarted its refill.
    witness: Option<Restart>,
}

/// What a witness knows of when the server last restarted its refill.
#[derive(Clone, Copy, Debug)]
struct Restart {
    /// When the witness was last charged full, until the request charged then answers: the
    /// server restarted when the first request sent since arrived, and until it is charged
    /// that time on the wire the witness may trail the server by its refill.
    pending: Option<u64>,
    /// The earliest that a request charged since `pending` can have been counted: the
    /// server restarted no later.
    first_count: u64,
}

impl Bucket {
    pub(super) fn new(
        dimension: Dimension,
        slot: usize,
        capacity: u64,
        window_ns: u64,
        now: u64,
    ) -> Self {
        let mut bucket = Bucket {
            dimension,
            slot,
            capacity,
            window_ns,
            full: u128::from(capacity) * u128::from(window_ns),
            tat: 0,
            own_tat: 0,
            ledger: 0,
            gaps: RecentGaps::default(),
            witness: None,
        };
        bucket.tat = bucket.scaled(now);
        bucket.own_tat = bucket.tat;
        bucket
    }

    #[inline]
    pub(super) fn scaled(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.capacity)
    }

    /// Scaled time that `units` occupy.
    #[inline]
    pub(super) fn share(&self, units: u64) -> u128 {
        u128::from(units) * u128::from(self.window_ns)
    }

    /// Scaled time in use at `now` (units × window_ns).
    fn used(&self, now: u64) -> u128 {
        self.tat.saturating_sub(self.scaled(now))
    }

    /// Units in use at `now`, rounded up.
    pub(super) fn level(&self, now: u64) -> u64 {
        let units = self.used(now).div_ceil(u128::from(self.window_ns));
        u64::try_from(units).unwrap_or(u64::MAX)
    }

    /// Moves both TATs from having charged `from` units to `to` at `now`, from the level at
    /// `now`: a debit lands in full even on a bucket that refilled since, a refund stops at a
    /// full bucket.
    pub(super) fn shift(&mut self, from: u64, to: u64, now: u64) {
        let (before, after) = (self.share(from), self.share(to));
        let floor = self.scaled(now);
        for tat in [&mut self.tat, &mut self.own_tat] {
            let level = (*tat).max(floor);
            *tat = if after > before {
                level.saturating_add(after - before)
            } else {
                level.saturating_sub(before - after).max(floor)
            };
        }
        self.ledger = self.ledger.wrapping_add(to).wrapping_sub(from);
    }

    /// This new bucket, carrying over what `previous` had in use, charged and heard: what is
    /// in use is in units × window_ns, whatever the capacity (a new interval rescales it), and
    /// a limit that changes between answers (two deployments behind one gateway) must not keep
    /// the reports from ever agreeing.
    pub(super) fn after(mut self, previous: Option<&Bucket>, now: u64) -> Bucket {
        let Some(previous) = previous else {
            return self;
        };
        let rescale =
            |used: u128| used * u128::from(self.window_ns) / u128::from(previous.window_ns);
        self.tat += rescale(previous.used(now));
        self.own_tat += rescale(previous.own_tat.saturating_sub(previous.scaled(now)));
        self.ledger = previous.ledger;
        if self.window_ns == previous.window_ns {
            self.gaps = previous.gaps;
        }
        self
    }

    /// A witness of this bucket for the charge correction: the same charges on a bucket of
    /// `limit` units a window (the server's own rate, before headroom), that never trails the
    /// server that counts exactly and moves only up, where agreeing reports surely put the
    /// server ahead: read with every request charged after their mark taken as counted (in a
    /// burst over many connections most overtake it), the count as a unit over (rounding),
    /// and the refill the server may not have restarted yet. What it was raised by is what the
    /// server surely counted beyond this limiter's own charges. It carries `previous`
    /// witness's state, or this bucket's use.
    pub(super) fn witness(&self, limit: u64, previous: Option<&Bucket>, now: u64) -> Bucket {
        let witness = Bucket::new(self.dimension, self.slot, limit, self.window_ns, now);
        match previous {
            Some(previous) => Bucket {
                witness: previous.witness,
                ..witness.after(Some(previous), now)
            },
            None => Bucket {
                gaps: RecentGaps::default(),
                witness: Some(Restart {
                    pending: None,
                    first_count: u64::MAX,
                }),
                ..witness.after(Some(self), now)
            },
        }
    }

    /// Charges `units` at `now`; returns whether the bucket was full before.
    #[inline]
    pub(super) fn take(&mut self, units: u64, now: u64) -> bool {
        let floor = self.scaled(now);
        let was_full = self.tat <= floor;
        if let (Some(restart), true) = (self.witness.as_mut(), was_full) {
            (restart.pending, restart.first_count) = (Some(now), u64::MAX);
        }
        self.tat = self.tat.max(floor) + self.share(units);
        self.own_tat = self.own_tat.max(floor) + self.share(units);
        self.ledger = self.ledger.wrapping_add(units);
        was_full
    }

    /// A report's reading on a bucket that limits (see
    /// [`Buckets::reconcile`](super::Buckets::reconcile)).
    pub(super) fn reconcile(&mut self, reported: u64, mark: &Mark, counted_by: u64, now: u64) {
        let floor = self.scaled(now);
        let (earliest, latest) = (mark.at.min(now), counted_by.clamp(mark.at, now));
        if mark.started & (1 << self.slot) != 0 && self.tat > floor {
            let transit = self.scaled(latest) - self.scaled(earliest);
            self.tat += transit;
            self.gaps.moved(transit as i128);
        }
        let level = self.tat.max(floor);
        let since = self.ledger.wrapping_sub(mark.ledgers[self.slot]) as i64;
        let implied = |counted_at: u64| {
            let counted = self.scaled(counted_at) + self.share(reported);
            let now_at = if since >= 0 {
                counted + self.share(since.unsigned_abs())
            } else {
                counted.saturating_sub(self.share(since.unsigned_abs()))
            };
            now_at.max(floor)
        };
        let at_least = implied(earliest);
        let at_most = implied(latest);
        let own = self.own_tat.max(floor);
        let step = self.gaps.record(
            at_least as i128 - level as i128,
            at_most as i128 - level as i128,
            level - own,
        );
        self.tat = (level as i128 + step) as u128;
    }

    /// A witness's reading of a report (see [`witness`](Bucket::witness)): returns the
    /// evidence when agreeing reports just raised it.
    pub(super) fn witness_reconcile(
        &mut self,
        reported: u64,
        mark: &Mark,
        counted_by: u64,
        now: u64,
    ) -> Option<Overcount> {
        let restart = self.witness.as_mut()?;
        let floor = u128::from(now) * u128::from(self.capacity);
        let latest = counted_by.clamp(mark.at, now);
        // What the witness may trail the server by: the refill between its start and the
        // server's, which came no later than the first count of a request sent since.
        let mut trails = 0;
        if let Some(start) = restart.pending {
            if mark.at == start {
                // A request sent at the start: its whole way there, at most, is charged once.
                restart.pending = None;
                self.tat =
                    self.tat.max(floor) + u128::from(latest - start) * u128::from(self.capacity);
            } else {
                if mark.at > start {
                    restart.first_count = restart.first_count.min(latest);
                }
                let restarted_by = restart.first_count.min(now);
                trails = u128::from(restarted_by - start) * u128::from(self.capacity);
            }
        }
        let level = self.tat.max(floor);
        let counted = self.scaled(mark.at.min(now)) + self.share(reported.saturating_sub(1));
        let at_least = counted.max(floor).saturating_sub(trails);
        // Never down: a report can put the server behind only by reading requests charged
        // before the mark as counted, and the mark's request may have overtaken them.
        let raised = self
            .gaps
            .record(at_least as i128 - level as i128, 0, 0)
            .unsigned_abs();
        self.tat = level + raised;
        self.gaps
            .judge(raised, mark.prompts, self.capacity, self.window_ns)
    }
}

/// Where the buckets stood just after a reservation was charged: when, and each dimension's
/// ledger (units charged in all). A response's rate-limit headers give the server's count from
/// about that moment; the ledger then says what this limiter charged since, which the server
/// had not counted yet, and the prompts ledger what the reports' evidence of the server's
/// charging covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// When (ns since the limiter's origin).
    pub(super) at: u64,
    /// Each bucket's ledger, by its index in [`BUCKETS`](super::BUCKETS).
    pub(super) ledgers: [u64; SLOTS],
    /// Prompt tokens charged in all, settles included.
    pub(super) prompts: u64,
    /// The buckets (bits by index in [`BUCKETS`](super::BUCKETS)) that were full before this charge: their
    /// refill restarted here, the server's only when the request reached it.
    pub(super) started: u8,
}

impl Mark {
    /// The latest moment the server can have counted the request reserved at this mark, for
    /// an answer at `now` from a server that spent `processing` on it: the rest of the round
    /// trip was on the wire, and the count came after the outbound part. Without a processing
    /// time, the answer itself (the count may have come as late as that).
    pub(crate) fn counted_by(&self, now: u64, processing: Option<Duration>) -> u64 {
        let now = now.max(self.at);
        match processing {
            Some(processing) => {
                let processing = u64::try_from(processing.as_nanos()).unwrap_or(u64::MAX);
                now.saturating_sub(processing).max(self.at)
            }
            None => now,
        }
    }
}

/// How many of the latest server reports must agree before a bucket's level moves. One
/// report overstates the server when requests sent after it overtook it on the way (they are
/// counted twice, see [`Buckets::reconcile`](super::Buckets::reconcile)); a real difference
/// shows in every report.
pub(crate) const REPORTS_TO_AGREE: usize = 3;

/// How many bucketfuls of this limiter's own charges the evidence of [`Overcount`] spans at
/// most: beyond, what is older counts half as much, so the correction follows what the server
/// did lately, not over the life of the process.
const EVIDENCE_SPAN: u64 = 4;

/// What the server's reports have shown of its charging, for the charge correction: over a
/// span in which this limiter charged `prompts` prompt tokens (settles included), the server
/// surely counted `extra` units more than this limiter did. Only moves that agreeing reports
/// made beyond the reading's uncertainty count, so a server that counts exactly never shows
/// any, however late its count may be read. Measured against the prompts because they are
/// what is estimated: the output reservation is charged as the server charges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overcount {
    /// Prompt tokens this limiter charged over the span.
    pub(crate) prompts: u64,
    /// Units the server surely counted beyond this limiter's own.
    pub(crate) extra: u64,
}

/// The gaps between the server's latest reports and a bucket's level (scaled units; positive:
/// the server is ahead), each read two ways: with the count taken at the mark (the most
/// refill the server can have had since: the server is at least this far ahead) and at the
/// latest moment it can have been taken (the least refill: at most this far). And what the
/// moves they made say of the server's charging ([`Overcount`]).
#[derive(Clone, Copy, Debug, Default)]
struct RecentGaps {
    at_least: [i128; REPORTS_TO_AGREE],
    at_most: [i128; REPORTS_TO_AGREE],
    len: usize,
    next: usize,
    /// The latest mark's prompts ledger a report was read against (it starts at 0).
    ledger: u64,
    /// Prompt tokens this limiter charged over the evidence's span, up to `ledger`.
    prompts: u64,
    /// What agreeing reports raised a witness by over the span (scaled units).
    overcount: u128,
}

impl RecentGaps {
    /// Records one report and returns by how much the level should move:
    /// - up by the least `at_least` gap once the latest [`REPORTS_TO_AGREE`] reports all put
    ///   the server ahead;
    /// - down by the least `at_most` distance once they all put it behind, but never by more
    ///   than `room` (the level above what this limiter charged itself): a limiter never
    ///   admits more than its own accounting allows.
    fn record(&mut self, at_least: i128, at_most: i128, room: u128) -> i128 {
        self.at_least[self.next] = at_least;
        self.at_most[self.next] = at_most;
        self.next = (self.next + 1) % REPORTS_TO_AGREE;
        self.len = (self.len + 1).min(REPORTS_TO_AGREE);
        if self.len < REPORTS_TO_AGREE {
            return 0;
        }
        let ahead = self.at_least.iter().copied().min().unwrap_or(0);
        let behind = self.at_most.iter().copied().max().unwrap_or(0);
        let step = if ahead > 0 {
            ahead
        } else if behind < 0 {
            -(behind.unsigned_abs().min(room) as i128)
        } else {
            0
        };
        self.moved(step);
        step
    }

    /// The level moved by `step` (scaled units; positive: up): the gaps shrink by it.
    fn moved(&mut self, step: i128) {
        if step != 0 {
            for gap in self.at_least.iter_mut().chain(&mut self.at_most) {
                *gap -= step;
            }
        }
    }

    /// Adds the report just recorded on a witness, read against a mark whose prompts ledger
    /// was `ledger`, that raised the witness by `raised` (scaled units), to the evidence;
    /// returns the evidence when it was raised (the server surely counted more than this
    /// limiter charged). `capacity` and `window_ns` are the witness's.
    fn judge(
        &mut self,
        raised: u128,
        ledger: u64,
        capacity: u64,
        window_ns: u64,
    ) -> Option<Overcount> {
        let growth = ledger.wrapping_sub(self.ledger) as i64;
        if growth > 0 {
            self.prompts = self.prompts.saturating_add(growth.unsigned_abs());
            self.ledger = ledger;
        }
        self.overcount += raised;
        while self.prompts > capacity.saturating_mul(EVIDENCE_SPAN) {
            self.prompts /= 2;
            self.overcount /= 2;
        }
        if raised == 0 || self.prompts == 0 {
            return None;
        }
        let extra = self.overcount / u128::from(window_ns);
        Some(Overcount {
            prompts: self.prompts,
            extra: u64::try_from(extra).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_when_the_latest_reports_agree_and_down_only_to_the_own_charges() {
        let mut gaps = RecentGaps::default();
        // Two reports are not enough; the third agreeing one moves by the least gap.
        assert_eq!(gaps.record(50, 60, 0), 0);
        assert_eq!(gaps.record(20, 30, 0), 0);
        assert_eq!(gaps.record(40, 45, 0), 20);
        // The stored gaps shrank by 20 (to 30, 0, 20): a report of 10 over the new level
        // leaves a 0 among the latest three; a second one makes them agree on 10.
        assert_eq!(gaps.record(10, 20, 20), 0);
        assert_eq!(gaps.record(10, 20, 20), 10);
        // Three reports putting the server behind bring the level down by the least they
        // all guarantee (at their latest count), but no lower than the bucket's own charges:
        // 30 above them here.
        assert_eq!(gaps.record(-500, -400, 30), 0);
        assert_eq!(gaps.record(-500, -400, 30), 0);
        assert_eq!(gaps.record(-500, -400, 30), -30);
        assert_eq!(gaps.record(-500, -400, 0), 0);
        // Disagreeing reports (one ahead, others behind) move nothing.
        assert_eq!(gaps.record(100, 120, 0), 0);
    }

    #[test]
    fn the_evidence_is_what_agreeing_reports_raised_over_what_was_charged() {
        // Window 1 ns a unit, so scaled units are units. 1,000 prompt tokens charged, then a
        // raise of 200 when the reports agree: the server counted at least 200 more.
        let mut gaps = RecentGaps::default();
        let evidence = |prompts, extra| Some(Overcount { prompts, extra });
        assert_eq!(gaps.judge(0, 600, 10_000, 1), None);
        assert_eq!(gaps.judge(200, 1_000, 10_000, 1), evidence(1_000, 200));
        // A report against an older mark adds nothing to what was charged.
        assert_eq!(gaps.judge(100, 900, 10_000, 1), evidence(1_000, 300));
        // Beyond four bucketfuls, the older evidence counts half.
        assert_eq!(gaps.judge(100, 5_000, 1_000, 1), evidence(2_500, 200));
    }

    const MS: u64 = 1_000_000;

    /// A witness of 60,000 tokens a minute (1 a ms) and a mark-making charge on it.
    fn witness() -> Bucket {
        let tpm = Bucket::new(Dimension::TokensPerMinute, 1, 60_000, 60_000 * MS, 0);
        tpm.witness(60_000, None, 0)
    }

    fn charge(witness: &mut Bucket, units: u64, at: u64) -> Mark {
        witness.take(units, at);
        let mut ledgers = [0; SLOTS];
        ledgers[witness.slot] = witness.ledger;
        let prompts = witness.ledger;
        Mark {
            at,
            ledgers,
            prompts,
            started: 0,
        }
    }

    #[test]
    fn a_witness_never_trails_a_server_that_counts_exactly() {
        // Four requests of 1,000 at 0; the server's first arrival is at 400 ms (a slow
        // connection), so its refill restarts 400 ms after the witness's. Three more at
        // 500 ms, all counted by 530 ms and answered at 800 ms with the count as of then
        // (6,600), before any answer to the first four: read against the witness's earlier
        // refill, the server looks 99 ahead in all three, but that is a restart the witness
        // cannot date yet.
        let mut w = witness();
        let first = charge(&mut w, 1_000, 0);
        for _ in 0..3 {
            charge(&mut w, 1_000, 0);
        }
        let later: Vec<Mark> = (0..3).map(|_| charge(&mut w, 1_000, 500 * MS)).collect();
        for mark in &later {
            assert_eq!(w.witness_reconcile(6_600, mark, 800 * MS, 800 * MS), None);
        }
        // The first request's answer dates the restart (no later than its count) and charges
        // the witness for it: the same reports then show nothing either.
        assert_eq!(w.witness_reconcile(1_000, &first, 800 * MS, 800 * MS), None);
        for mark in &later {
            assert_eq!(w.witness_reconcile(6_600, mark, 800 * MS, 800 * MS), None);
        }
    }

    #[test]
    fn a_witness_is_raised_by_what_the_server_surely_counted_more() {
        // A request of 1,000 every 100 ms, each counted and answered at once, by a server that
        // charges 1,200 for it: the third report makes three agree, and the witness rises by
        // the least they put the server ahead (less a unit of rounding), again at the fourth.
        let mut w = witness();
        let evidence: Vec<_> = (0..4)
            .map(|i| {
                let at = i * 100 * MS;
                let mark = charge(&mut w, 1_000, at);
                w.witness_reconcile(1_200 * (i + 1) - 100 * i, &mark, at, at)
            })
            .collect();
        let raised = |prompts, extra| Some(Overcount { prompts, extra });
        assert_eq!(
            evidence,
            [None, None, raised(3_000, 199), raised(4_000, 399)]
        );
    }
}
