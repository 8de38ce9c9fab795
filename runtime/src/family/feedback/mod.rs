//! What a family learns from its server's answers: the opening burst before the first one,
//! the correction of the prompt estimate, and the server's own limits and accounting from the
//! rate-limit headers.
//!
//! One `FamilyFeedback` per limiter, shared by every call of the family. With the Redis
//! backend the tightening goes to the shared buckets, and the limits adopted here and the
//! raised correction reach the family's other processes through Redis (`shared.rs`); the
//! opening burst stays per process (each process verifies its own estimates).

mod correction;
mod opening;
#[cfg(feature = "redis")]
mod shared;

mod counts;

mod window;

use std::sync::Mutex;

use tokio::time::Instant;

pub use correction::{ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION};
pub use opening::{OPENING_BURST_FRACTION, OPENING_MAX_WAIT};

use crate::answers::http::RateLimitHeaders;
use crate::limiter::gcra::Mark;
use crate::limiter::{Limiter, SharedMark};
use crate::model::limit_family::LimitFamily;
use crate::store::Backed;
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::Quota;
use opening::OpeningBurst;
pub(crate) use opening::OpeningPermit;

/// How many adopted limits a family remembers having logged.
const REMEMBERED_LIMITS: usize = 8;

/// Answers in a row whose resets name one boundary, with counts far enough apart that a
/// refilling bucket's would not, before a family is followed as a window.
const WINDOW_REPORTS_TO_AGREE: u8 = 3;

/// How close two answers' boundaries (answer time + reset) must be to be one.
const BOUNDARY_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(1);

/// How far apart a refilling bucket's "full again" would be for two counts, at least, for the
/// agreement to tell a window from a bucket.
const BOUNDARY_SPREAD: std::time::Duration = std::time::Duration::from_secs(3);

/// The boundary an answer named on one dimension, its count then, and how many answers since
/// named the same boundary with counts far enough below.
#[derive(Debug, Clone, Copy)]
struct WindowEvidence {
    dimension: Dimension,
    boundary: Instant,
    remaining: u64,
    agreeing: u8,
}

/// What one family has learned from its server so far.
#[derive(Debug)]
pub(crate) struct FamilyFeedback {
    family: LimitFamily,
    /// The limits configured for the family: a server's limit up to these is followed.
    configured: Quota,
    learn_limits: bool,
    /// Whether the window kind may be learned (it was not configured).
    learn_window: bool,
    /// The limits adopted so far, to log each once.
    adopted: Mutex<Vec<(Dimension, u64)>>,
    opening: OpeningBurst,
    correction: Mutex<ChargeCorrection>,
    /// What the answers' resets say of how the server counts (see `learn_window`).
    window_evidence: Mutex<Vec<WindowEvidence>>,
    /// The recent answers' counts and round trips (see `window.rs`).
    window_witness: Mutex<counts::WindowWitness>,
    /// The family's state in Redis, when it is shared.
    #[cfg(feature = "redis")]
    store: Option<crate::store::SharedFamily>,
    /// When this process next reads what the family's other processes shared (`None`: now).
    #[cfg(feature = "redis")]
    next_refresh: Mutex<Option<Instant>>,
}

impl FamilyFeedback {
    pub(crate) fn new(
        family: LimitFamily,
        backed: &Backed,
        learn_limits: bool,
        learn_window: bool,
    ) -> Self {
        FamilyFeedback {
            family,
            configured: backed.limiter.quota(),
            learn_limits,
            learn_window,
            adopted: Mutex::new(Vec::new()),
            opening: OpeningBurst::new(&backed.limiter.quota()),
            correction: Mutex::new(ChargeCorrection::default()),
            window_evidence: Mutex::new(Vec::new()),
            window_witness: Mutex::new(counts::WindowWitness::default()),
            #[cfg(feature = "redis")]
            store: backed.shared.clone(),
            #[cfg(feature = "redis")]
            next_refresh: Mutex::new(None),
        }
    }

    /// Waits while the family is in its opening burst and `cost` does not fit what is left
    /// of it; the permit is the call's part, given back unless [`spent`](OpeningPermit::spent).
    pub(crate) async fn admit_opening(&self, cost: &Cost) -> OpeningPermit {
        self.opening.admit(cost).await
    }

    /// Whether `cost` would pass the opening gate now (a pool routes around a deployment
    /// whose first burst is spent until its server has answered).
    pub(crate) fn opening_would_admit(&self, cost: &Cost) -> bool {
        self.opening.would_admit(cost)
    }

    /// The server has answered: the opening burst is over.
    pub(crate) fn server_answered(&self) {
        self.opening.open();
    }

    /// The correction factor in force now.
    pub(crate) fn correction_factor(&self) -> f64 {
        self.correction().factor(Instant::now())
    }

    /// `input_tokens` raised by the learned correction.
    pub(crate) fn corrected_input(&self, input_tokens: u64) -> u64 {
        self.correction().apply(input_tokens, Instant::now())
    }

    fn correction(&self) -> std::sync::MutexGuard<'_, ChargeCorrection> {
        self.correction.locked()
    }

    /// Brings the limiter to what the server reports in a response's headers; `mark` is where
    /// the limiter stood just after the request's reservation was charged (and settled).
    ///
    /// - **Which dimension.** A reported limit goes to the dimension with that limit, among
    ///   those of the window its reset implies (a per-day request limit is not a per-minute
    ///   one; see `RateLimitHeaders::window`).
    /// - **Limits.** A reported limit up to the configured one is followed, down and back up:
    ///   the tier may overstate the account, and one odd answer must not cost the quota for
    ///   good. One above it is adopted only with learned limits on
    ///   (`RATE_LIMITED_LEARN_LIMITS`). A new limit is logged once, at info.
    /// - **Counts.** The units the server counts in use move the local level to what they
    ///   imply now, whether or not the reported limit was adopted: the server counted them
    ///   when the request arrived, so the count is read against the mark, refilled since,
    ///   plus what was charged after it, and the level moves once three reports agree (see
    ///   `Buckets::reconcile`). When the server says how long it spent on the request
    ///   (`openai-processing-ms`), the rest of the round trip bounds when it counted: the
    ///   level follows the server to within the answer's way back (1.002x of the minimum in
    ///   the real-time benchmark, 0 429s). Without it, the count may be as old as the whole
    ///   round trip: the limiter then trails the server by one request latency (1.02x), never
    ///   runs ahead of it. A negative `remaining` (a gateway over its limit) reads as an
    ///   empty bucket.
    /// - **The charge correction** ([`ChargeCorrection`]) hears, on tokens and under the
    ///   limit in force, only what agreeing reports proved beyond the reading's uncertainty:
    ///   what they raised a witness of the bucket by, kept at the server's own rate (see
    ///   `Buckets::reconcile`), over the prompt tokens charged meanwhile. A server that counts
    ///   exactly leaves it at 1.0, however late its count may be read; a single answer never
    ///   moves it.
    /// - A family whose buckets live in Redis reads the count against `shared`, where Redis's
    ///   buckets stood just after the request's charge on the server's clock: Redis keeps the
    ///   server's count as of the request's start, refilled since, and on top of what was
    ///   charged since, whatever the count holds beyond both; the correction compares the
    ///   count with the mark plus those charges, so a server that counts exactly leaves it at
    ///   1.0 whatever the request's latency. Without a mark (the fallback) the count is read
    ///   as of the answer.
    /// - **A family counted per window** (`RATE_LIMITED_<FAMILY>_WINDOW`, set or learned)
    ///   takes from the counts only what they tell of the window (see `window.rs`): they are
    ///   not a refilling bucket's level, and read as one they would raise the correction
    ///   against a server that counts exactly. Another client's use of the same key then
    ///   shows only as a 429, whose retry-after holds the family.
    pub(crate) fn apply_headers(
        self: &std::sync::Arc<Self>,
        limiter: &Limiter,
        headers: &RateLimitHeaders,
        mark: Option<&Mark>,
        shared: Option<&SharedMark>,
    ) {
        use Dimension::*;
        let reports = [
            (
                (headers.limit_requests, headers.remaining_requests),
                headers.reset_requests,
                &[RequestsPerMinute, RequestsPerDay][..],
            ),
            (
                (headers.limit_tokens, headers.remaining_tokens),
                headers.reset_tokens,
                &[TokensPerMinute, TokensPerDay][..],
            ),
            (
                (headers.limit_input_tokens, headers.remaining_input_tokens),
                headers.reset_input_tokens,
                &[InputTokensPerMinute][..],
            ),
            (
                (headers.limit_output_tokens, headers.remaining_output_tokens),
                headers.reset_output_tokens,
                &[OutputTokensPerMinute][..],
            ),
        ];
        for ((limit, remaining), reset, dimensions) in reports {
            let (Some(limit), Some(remaining)) = (limit, remaining) else {
                continue;
            };
            if limit == 0 {
                continue;
            }
            // The dimensions of the window the reset names, if it names one.
            let window = RateLimitHeaders::window(limit, remaining, reset);
            let candidates: Vec<Dimension> = dimensions
                .iter()
                .copied()
                .filter(|d| window.is_none_or(|w| d.window() == Some(w)))
                .collect();
            let Some((dimension, adopted)) = self.dimension_for(limiter, &candidates, limit) else {
                continue;
            };
            if let Some(reset) = reset {
                self.learn_window(limiter, dimension, limit, remaining, reset);
            }
            let sent = mark
                .map(|mark| limiter.instant_of(mark))
                .or(shared.map(|shared| shared.starts_at));
            if let Some(sent) = sent {
                self.watch_counts(limiter, dimension, (limit, remaining), reset, sent);
            }
            if limiter.quota().window != crate::units::quota::Window::Continuous {
                // A count per window is not a refilling bucket's level: read against one, it
                // would look like a server counting more than it is sent. The window log
                // alone keeps the family inside the server's windows.
                continue;
            }
            let used = limit.saturating_sub(remaining);
            // The estimate is judged against the charge only on tokens, and only where the
            // server's limit is the one in force and was before this answer.
            let judge = !adopted
                && limiter.quota().limit(dimension) == Some(limit)
                && matches!(dimension, TokensPerMinute | InputTokensPerMinute);
            if self.reconcile_shared(limiter, dimension, used, judge, shared, headers.processing) {
                continue;
            }
            let overcount = limiter.reconcile(dimension, used, mark, headers.processing, judge);
            if let Some(overcount) = overcount {
                let now = Instant::now();
                if self.correction().observe(
                    overcount.prompts,
                    overcount.prompts + overcount.extra,
                    now,
                ) {
                    self.share_correction();
                }
            }
        }
    }

    /// The dimension a reported `limit` is about, among `candidates` (in order of
    /// preference), and whether this answer changed its limit: the one with that limit; else
    /// the first limited one, set to `limit` when that is allowed (see
    /// [`set_limit`](Self::set_limit)); else the first one, if the limit may be adopted there.
    fn dimension_for(
        &self,
        limiter: &Limiter,
        candidates: &[Dimension],
        limit: u64,
    ) -> Option<(Dimension, bool)> {
        let quota = limiter.quota();
        if let Some(dimension) = candidates.iter().find(|d| quota.limit(**d) == Some(limit)) {
            return Some((*dimension, false));
        }
        let limited = candidates.iter().find(|d| quota.limit(**d).is_some());
        let dimension = *limited.or(candidates.first())?;
        let adopted = self.set_limit(limiter, dimension, limit, "the server reports");
        if adopted {
            self.share_limit(dimension, limit);
        }
        (adopted || limited.is_some()).then_some((dimension, adopted))
    }

    /// Sets `dimension` to `limit` (reported by `source`) when that is allowed: up to the
    /// configured limit, or above it with learned limits on. Returns whether it did.
    fn set_limit(&self, limiter: &Limiter, dimension: Dimension, limit: u64, source: &str) -> bool {
        let configured = self.configured.limit(dimension);
        if !(configured.is_some_and(|c| limit <= c) || self.learn_limits) {
            tracing::debug!(
                family = %self.family,
                %dimension,
                limit,
                ?configured,
                "{source} a higher limit than configured; ignored (set \
                 RATE_LIMITED_LEARN_LIMITS=1 to adopt it)"
            );
            return false;
        }
        let mut quota = limiter.quota();
        quota.set_limit(dimension, Some(limit));
        if self.first_time(dimension, limit) {
            tracing::info!(
                family = %self.family,
                %dimension,
                limit,
                ?configured,
                "adopting the limit {source}"
            );
        } else {
            tracing::debug!(family = %self.family, %dimension, limit, "adopting the limit {source}");
        }
        limiter.set_quota(quota);
        true
    }

    /// Learns from the answers' resets that the server counts per window, not with a refill:
    /// a refilling bucket is full again `used / rate` after an answer, so that moment moves
    /// later by at least the refill time of what was used since (what `remaining` fell by); a
    /// fixed window's resets all count down to its boundary. After [`WINDOW_REPORTS_TO_AGREE`] answers in a row that name one boundary
    /// (within [`BOUNDARY_TOLERANCE`]) with counts that would put a bucket's at least
    /// [`BOUNDARY_SPREAD`] apart, a family whose limits refill continuously is followed as a
    /// window ([`Window::Sliding`](crate::units::quota::Window::Sliding)), logged once at info:
    /// at most the limit in any window from then on. A family shared through Redis keeps its
    /// buckets (logged at debug).
    fn learn_window(
        &self,
        limiter: &Limiter,
        dimension: Dimension,
        limit: u64,
        remaining: u64,
        reset: std::time::Duration,
    ) {
        let Some(window) = dimension.window() else {
            return;
        };
        let now = Instant::now();
        let boundary = now + reset;
        let agreeing = {
            let mut evidence = self.window_evidence.locked();
            let fresh = WindowEvidence {
                dimension,
                boundary,
                remaining,
                agreeing: 0,
            };
            let Some(anchor) = evidence.iter_mut().find(|e| e.dimension == dimension) else {
                evidence.push(fresh);
                return;
            };
            let apart = if boundary > anchor.boundary {
                boundary - anchor.boundary
            } else {
                anchor.boundary - boundary
            };
            if apart > BOUNDARY_TOLERANCE {
                // Another boundary: a new window, or a bucket. Start over from this answer.
                *anchor = fresh;
                return;
            }
            // Used more since the anchor (remaining fell by `counts`): a bucket's "full again"
            // would have moved by at least that usage's refill time; a window's boundary did
            // not move.
            let counts = anchor.remaining.saturating_sub(remaining);
            let spread = window.mul_f64(counts as f64 / limit.max(1) as f64);
            if spread >= BOUNDARY_SPREAD {
                anchor.agreeing = anchor.agreeing.saturating_add(1);
                anchor.remaining = remaining;
            }
            anchor.agreeing
        };
        if agreeing < WINDOW_REPORTS_TO_AGREE {
            return;
        }
        self.follow_window(
            limiter,
            dimension,
            "its resets count down to one boundary while the counts fall",
        );
    }

    /// Whether `limit` is new on `dimension` (for the log: a limit that alternates between
    /// answers is told once). Remembers a few.
    fn first_time(&self, dimension: Dimension, limit: u64) -> bool {
        let mut seen = self.adopted.locked();
        if seen.contains(&(dimension, limit)) {
            return false;
        }
        if seen.len() == REMEMBERED_LIMITS {
            seen.remove(0);
        }
        seen.push((dimension, limit));
        true
    }

    /// Without a shared store there is nothing to share.
    #[cfg(not(feature = "redis"))]
    fn share_limit(&self, _dimension: Dimension, _limit: u64) {}

    #[cfg(not(feature = "redis"))]
    fn share_correction(&self) {}

    #[cfg(not(feature = "redis"))]
    fn reconcile_shared(
        self: &std::sync::Arc<Self>,
        _limiter: &Limiter,
        _dimension: Dimension,
        _used: u64,
        _judge: bool,
        _shared: Option<&SharedMark>,
        _processing: Option<std::time::Duration>,
    ) -> bool {
        false
    }

    #[cfg(not(feature = "redis"))]
    pub(crate) fn refresh_shared(self: &std::sync::Arc<Self>, _limiter: &Limiter) {}
}
