//! The retry policy: after a failed attempt, retry (after how long), return the error, or give
//! up with the limiter's own error.
//!
//! `next_action` is a pure function of the verdict, the attempts so far, the time spent and the
//! settings, so every rule is unit-tested without a clock. The `backoff` crate (unmaintained,
//! RUSTSEC-2025-0012, named by the design) stays behind `Backoff`, driven by tokio's clock so
//! paused-time tests see virtual waits; the caps on retry count and total time are ours, because
//! backoff's own `max_elapsed_time` is not applied to server-given waits.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::exponential::ExponentialBackoff;

use crate::answers::classify::Verdict;

/// The longest a call keeps retrying, all waits included, before it gives up.
pub const MAX_RETRY_TIME: Duration = Duration::from_secs(600);

/// The limits a retry decision is taken against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryLimits {
    /// Retries allowed after the first attempt; 0 hands back the first error.
    pub(crate) max_retries: u32,
    /// A server-requested wait longer than this fails at once.
    pub(crate) max_retry_after: Duration,
    /// The longest a call keeps retrying, waits included.
    pub(crate) max_total: Duration,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Hand the attempt's own error back. When `hold_family_for` is set, the family's other
    /// callers first wait out the server's hint (a 429 with no retry on offer).
    Return { hold_family_for: Option<Duration> },
    /// Run the call again after `wait`. A rate-limit (`hold_family`) makes the whole family
    /// wait, not only this call, so other callers do not pile on.
    Retry { wait: Duration, hold_family: bool },
    /// The server asked to wait longer than allowed: fail with `Error::RetryAfterTooLong`.
    RetryAfterTooLong { asked: Duration, max: Duration },
    /// The retry budget or the total-time cap is spent: fail with `Error::RetriesExhausted`.
    RetriesExhausted,
}

/// Decides what follows a failed attempt.
///
/// `attempts` counts the runs so far (1 after the first), `elapsed` the time since the call
/// started. `next_backoff` is asked for a wait only when the server gave none; `None` from it
/// means the backoff itself gave up.
pub(crate) fn next_action(
    verdict: &Verdict,
    attempts: u32,
    elapsed: Duration,
    limits: RetryLimits,
    next_backoff: impl FnOnce() -> Option<Duration>,
) -> Action {
    let (hint, hold_family) = match verdict {
        Verdict::RateLimited { retry_after } => (*retry_after, true),
        Verdict::Transient { retry_after } => (*retry_after, false),
        Verdict::QuotaExhausted { .. } | Verdict::RequestTooLarge { .. } | Verdict::Fatal => {
            return Action::Return {
                hold_family_for: None,
            }
        }
    };
    if let Some(asked) = hint.filter(|wait| *wait > limits.max_retry_after) {
        return Action::RetryAfterTooLong {
            asked,
            max: limits.max_retry_after,
        };
    }
    if limits.max_retries == 0 {
        return Action::Return {
            hold_family_for: hint.filter(|_| hold_family),
        };
    }
    let wait = hint.or_else(next_backoff);
    let out_of_time = wait.is_none_or(|wait| elapsed.saturating_add(wait) > limits.max_total);
    match wait {
        Some(wait) if attempts <= limits.max_retries && !out_of_time => {
            Action::Retry { wait, hold_family }
        }
        _ => Action::RetriesExhausted,
    }
}

/// Exponential backoff with jitter on tokio's clock: 0.5 s, doubling, ±50 %, at most 30 s apart.
/// Built on the first wait it is asked for: most calls never need one.
#[derive(Default)]
pub(crate) struct Backoff {
    state: Option<ExponentialBackoff<TokioClock>>,
}

impl Backoff {
    /// The next wait, or `None` once backoff's own elapsed-time cap is reached.
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        self.state.get_or_insert_with(new_backoff).next_backoff()
    }
}

/// backoff's clock, on tokio's (virtual in paused tests) time.
#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl backoff::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

fn new_backoff() -> ExponentialBackoff<TokioClock> {
    ExponentialBackoff {
        current_interval: Duration::from_millis(500),
        initial_interval: Duration::from_millis(500),
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_interval: Duration::from_secs(30),
        start_time: backoff::Clock::now(&TokioClock),
        max_elapsed_time: Some(MAX_RETRY_TIME),
        clock: TokioClock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RetryLimits = RetryLimits {
        max_retries: 3,
        max_retry_after: Duration::from_secs(120),
        max_total: MAX_RETRY_TIME,
    };
    const BACKOFF: Duration = Duration::from_millis(700);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn decide(verdict: Verdict, attempts: u32, elapsed: Duration, limits: RetryLimits) -> Action {
        next_action(&verdict, attempts, elapsed, limits, || Some(BACKOFF))
    }

    fn rate_limited(retry_after: Option<Duration>) -> Verdict {
        Verdict::RateLimited { retry_after }
    }

    #[test]
    fn rate_limited_waits_the_hint_and_holds_the_family() {
        assert_eq!(
            decide(rate_limited(Some(secs(2))), 1, Duration::ZERO, LIMITS),
            Action::Retry {
                wait: secs(2),
                hold_family: true
            }
        );
    }

    #[test]
    fn rate_limited_without_a_hint_backs_off() {
        assert_eq!(
            decide(rate_limited(None), 1, Duration::ZERO, LIMITS),
            Action::Retry {
                wait: BACKOFF,
                hold_family: true
            }
        );
    }

    #[test]
    fn a_hint_over_the_maximum_fails_at_once() {
        let asked = secs(121);
        for verdict in [
            rate_limited(Some(asked)),
            Verdict::Transient {
                retry_after: Some(asked),
            },
        ] {
            assert_eq!(
                decide(verdict, 1, Duration::ZERO, LIMITS),
                Action::RetryAfterTooLong {
                    asked,
                    max: secs(120)
                }
            );
        }
        // Exactly the maximum is still honoured, and a saturated hint is refused.
        assert!(matches!(
            decide(rate_limited(Some(secs(120))), 1, Duration::ZERO, LIMITS),
            Action::Retry { .. }
        ));
        assert!(matches!(
            decide(rate_limited(Some(Duration::MAX)), 1, Duration::ZERO, LIMITS),
            Action::RetryAfterTooLong { .. }
        ));
    }

    #[test]
    fn errors_that_cannot_succeed_are_returned() {
        let never = [
            Verdict::QuotaExhausted {
                message: "insufficient_quota".into(),
            },
            Verdict::RequestTooLarge {
                message: "Request too large".into(),
            },
            Verdict::Fatal,
        ];
        for verdict in never {
            let action = next_action(&verdict, 1, Duration::ZERO, LIMITS, || {
                panic!("no backoff for {verdict:?}")
            });
            assert_eq!(
                action,
                Action::Return {
                    hold_family_for: None
                }
            );
        }
    }

    #[test]
    fn transient_backs_off_without_holding_the_family() {
        assert_eq!(
            decide(
                Verdict::Transient { retry_after: None },
                2,
                Duration::ZERO,
                LIMITS
            ),
            Action::Retry {
                wait: BACKOFF,
                hold_family: false
            }
        );
        assert_eq!(
            decide(
                Verdict::Transient {
                    retry_after: Some(secs(3))
                },
                1,
                Duration::ZERO,
                LIMITS
            ),
            Action::Retry {
                wait: secs(3),
                hold_family: false
            }
        );
    }

    #[test]
    fn the_retry_budget_runs_out() {
        // 3 retries: the 4th run's failure is the last.
        assert!(matches!(
            decide(rate_limited(None), 3, Duration::ZERO, LIMITS),
            Action::Retry { .. }
        ));
        assert_eq!(
            decide(rate_limited(None), 4, Duration::ZERO, LIMITS),
            Action::RetriesExhausted
        );
        // The backoff giving up is the end too.
        assert_eq!(
            next_action(&rate_limited(None), 1, Duration::ZERO, LIMITS, || None),
            Action::RetriesExhausted
        );
    }

    #[test]
    fn no_retries_returns_the_error_after_holding_the_family() {
        let none = RetryLimits {
            max_retries: 0,
            ..LIMITS
        };
        assert_eq!(
            decide(rate_limited(Some(secs(5))), 1, Duration::ZERO, none),
            Action::Return {
                hold_family_for: Some(secs(5))
            }
        );
        assert_eq!(
            decide(
                Verdict::Transient {
                    retry_after: Some(secs(5))
                },
                1,
                Duration::ZERO,
                none
            ),
            Action::Return {
                hold_family_for: None
            }
        );
    }

    #[test]
    fn the_total_time_cap_counts_the_next_wait() {
        let elapsed = MAX_RETRY_TIME - secs(2);
        assert!(matches!(
            decide(rate_limited(Some(secs(2))), 1, elapsed, LIMITS),
            Action::Retry { .. }
        ));
        assert_eq!(
            decide(rate_limited(Some(secs(3))), 1, elapsed, LIMITS),
            Action::RetriesExhausted
        );
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let mut backoff = Backoff::default();
        let first = backoff.next_wait().unwrap();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(750));
        for _ in 0..20 {
            let wait = backoff.next_wait().unwrap();
            assert!(wait <= Duration::from_secs(45), "{wait:?}");
        }
    }
}
