//! The latest server reports of one bucket, and when they agree enough to move its level
//! (see `Buckets::reconcile`).

/// How many of the latest server reports must agree before a bucket's level moves. One
/// report overstates the server when requests sent after it overtook it on the way (they are
/// counted twice, see [`Buckets::reconcile`](super::Buckets::reconcile)); a real difference
/// shows in every report.
pub(crate) const REPORTS_TO_AGREE: usize = 3;

/// The gaps between the server's latest reports and a bucket's level (scaled units; positive:
/// the server is ahead), each read two ways: with the count taken at the mark (the most
/// refill the server can have had since: the server is at least this far ahead) and at the
/// latest moment it can have been taken (the least refill: at most this far).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RecentGaps {
    at_least: [i128; REPORTS_TO_AGREE],
    at_most: [i128; REPORTS_TO_AGREE],
    len: usize,
    next: usize,
    /// What the reports raised the level by and have not taken back: the most they may.
    raised: u128,
}

impl RecentGaps {
    /// Records one report and returns by how much the level should move:
    /// - up by the least `at_least` gap once the latest [`REPORTS_TO_AGREE`] reports all put
    ///   the server ahead;
    /// - down by the least `at_most` distance once they all put it behind, but never by more
    ///   than earlier reports raised it: a limiter never admits more than its own accounting
    ///   allows.
    pub(super) fn record(&mut self, at_least: i128, at_most: i128) -> i128 {
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
            -(behind.unsigned_abs().min(self.raised) as i128)
        } else {
            0
        };
        self.moved(step);
        step
    }

    /// The level moved by `step` (scaled units; positive: up): the gaps shrink by it.
    pub(super) fn moved(&mut self, step: i128) {
        if step == 0 {
            return;
        }
        for gap in self.at_least.iter_mut().chain(&mut self.at_most) {
            *gap -= step;
        }
        self.raised = if step > 0 {
            self.raised + step.unsigned_abs()
        } else {
            self.raised.saturating_sub(step.unsigned_abs())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_when_the_latest_reports_agree_and_down_only_what_went_up() {
        let mut gaps = RecentGaps::default();
        // Two reports are not enough; the third agreeing one moves by the least gap.
        assert_eq!(gaps.record(50, 60), 0);
        assert_eq!(gaps.record(20, 30), 0);
        assert_eq!(gaps.record(40, 45), 20);
        // The stored gaps shrank by 20 (to 30, 0, 20): a report of 10 over the new level
        // leaves a 0 among the latest three; a second one makes them agree on 10.
        assert_eq!(gaps.record(10, 20), 0);
        assert_eq!(gaps.record(10, 20), 10);
        // Three reports putting the server behind bring the level down by the least they
        // all guarantee (at their latest count), capped at the 30 raised so far.
        assert_eq!(gaps.record(-500, -400), 0);
        assert_eq!(gaps.record(-500, -400), 0);
        assert_eq!(gaps.record(-500, -400), -30);
        assert_eq!(gaps.record(-500, -400), 0);
        // Disagreeing reports (one ahead, others behind) move nothing.
        assert_eq!(gaps.record(100, 120), 0);
    }
}
