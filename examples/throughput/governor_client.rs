//! Strategy (c): governor, an RPM limiter and a TPM limiter awaited one after the other; a 429
//! that still comes back is retried as in (b).

use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, InsufficientCapacity, Quota, RateLimiter};
use ratelimited::testing::MockLimits;
use tokio::time::Instant;

/// `tokio::time::Instant` as a governor clock reading, so governor runs on the paused clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(Duration::from(duration))
            .map_or(*self, TokioInstant)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type TokioLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

/// The peer's two limiters.
pub(crate) enum Governor {
    /// Paused time: governor's `until_n_ready` sleeps on futures-timer and reads quanta, both
    /// real time, so it would never see the virtual clock move. Same algorithm on tokio's clock.
    Tokio {
        rpm: TokioLimiter,
        tpm: TokioLimiter,
    },
    /// Real time: governor as shipped, default clock and `until_n_ready`.
    Real {
        rpm: DefaultDirectRateLimiter,
        tpm: DefaultDirectRateLimiter,
    },
}

impl Governor {
    pub(crate) fn new(limits: MockLimits, paused: bool) -> Self {
        let per_minute = |limit: u64| {
            Quota::per_minute(NonZeroU32::new(limit as u32).expect("limits are at least 1"))
        };
        let (rpm, tpm) = (per_minute(limits.rpm), per_minute(limits.tpm));
        if paused {
            Governor::Tokio {
                rpm: RateLimiter::direct_with_clock(rpm, TokioClock),
                tpm: RateLimiter::direct_with_clock(tpm, TokioClock),
            }
        } else {
            Governor::Real {
                rpm: RateLimiter::direct(rpm),
                tpm: RateLimiter::direct(tpm),
            }
        }
    }

    /// One request, then its tokens, as a caller with two governors writes it.
    pub(crate) async fn admit(&self, tokens: u64) -> Result<(), InsufficientCapacity> {
        let n = NonZeroU32::new(tokens as u32).unwrap_or(NonZeroU32::MIN);
        match self {
            Governor::Tokio { rpm, tpm } => {
                until_n_ready_on_tokio(rpm, NonZeroU32::MIN).await?;
                until_n_ready_on_tokio(tpm, n).await
            }
            Governor::Real { rpm, tpm } => {
                rpm.until_ready().await;
                tpm.until_n_ready(n).await
            }
        }
    }
}

/// `RateLimiter::until_n_ready` (check, sleep until the reported time, check again), with
/// tokio's sleep instead of futures-timer's.
async fn until_n_ready_on_tokio(
    limiter: &TokioLimiter,
    n: NonZeroU32,
) -> Result<(), InsufficientCapacity> {
    while let Err(not_until) = limiter.check_n(n)? {
        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
    }
    Ok(())
}
