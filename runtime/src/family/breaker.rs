//! The per-family circuit breaker: after repeated transient failures (5xx, 529, timeouts) a
//! family's calls fail at once instead of queueing up against a provider that is down.
//!
//! Closed → (`failures` consecutive transient failures) → open → (`cooldown` later, at the next
//! call) → half-open: that one call is the probe, and every other call fails fast while it is
//! in flight. A probe that gets any answer from the server but a transient failure closes the
//! breaker; a transient failure opens it again for another cool-down; a probe dropped before it
//! finished hands the probe to the next call. A 429 is an answer (the server is up and
//! counting), so it resets the count instead of adding to it: rate limits are the limiter's
//! job, not the breaker's.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// Where a family's breaker stands, as [`stats`](crate::Registry::stats) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; transient failures are being counted.
    Closed,
    /// Calls fail at once with [`Error::CircuitOpen`](crate::Error::CircuitOpen).
    Open,
    /// The cool-down is over: the next call (or the one in flight) probes the provider.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// A call's pass through the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// An ordinary call.
    Through,
    /// The one call whose outcome decides whether the breaker closes.
    Probe,
}

/// How an admitted call ended, as far as the breaker cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered (success, 429, or an error retrying cannot fix).
    Answered,
    /// 5xx, 529, a timeout, a reset connection.
    TransientFailure,
}

/// A state change, for the `ratelimited::breaker` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    /// 0 turns the breaker off.
    failures_to_open: u32,
    cooldown: Duration,
    state: State,
}

impl Breaker {
    pub(crate) fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Breaker {
            failures_to_open,
            cooldown,
            state: State::Closed { failures: 0 },
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// What [`admit`](Breaker::admit) would refuse with now, without letting anything
    /// through: how long until a probe may go (`None`: a probe is out), or `None` if a call
    /// would pass.
    pub(crate) fn refusal(&self, now: Instant) -> Option<Option<Duration>> {
        match self.state {
            State::Open { until } if now < until => Some(Some(until - now)),
            State::HalfOpen {
                probe_in_flight: true,
            } => Some(None),
            _ => None,
        }
    }

    /// Lets a call through, or says how long until a probe may go (`None`: a probe is out).
    pub(crate) fn admit(
        &mut self,
        now: impl Fn() -> Instant,
    ) -> Result<(Pass, Option<Transition>), Option<Duration>> {
        match self.state {
            State::Closed { .. } => Ok((Pass::Through, None)),
            State::Open { until } if now() < until => Err(Some(until - now())),
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    probe_in_flight: true,
                };
                let transition = Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                };
                Ok((Pass::Probe, Some(transition)))
            }
            State::HalfOpen {
                probe_in_flight: true,
            } => Err(None),
            State::HalfOpen {
                probe_in_flight: false,
            } => {
                self.state = State::HalfOpen {
                    probe_in_flight: true,
                };
                Ok((Pass::Probe, None))
            }
        }
    }

    /// Counts an admitted call's outcome; calls admitted before the breaker opened do not move
    /// it once it is open: only the probe decides.
    pub(crate) fn record(
        &mut self,
        pass: Pass,
        outcome: Outcome,
        now: impl Fn() -> Instant,
    ) -> Option<Transition> {
        let from = self.state();
        self.state = match (self.state, pass, outcome) {
            (State::Closed { .. }, _, Outcome::Answered) => State::Closed { failures: 0 },
            (State::Closed { failures }, _, Outcome::TransientFailure) => {
                let failures = failures + 1;
                if failures >= self.failures_to_open && self.failures_to_open > 0 {
                    State::Open {
                        until: now() + self.cooldown,
                    }
                } else {
                    State::Closed { failures }
                }
            }
            (State::HalfOpen { .. }, Pass::Probe, Outcome::Answered) => {
                State::Closed { failures: 0 }
            }
            (State::HalfOpen { .. }, Pass::Probe, Outcome::TransientFailure) => State::Open {
                until: now() + self.cooldown,
            },
            (state, _, _) => state,
        };
        let to = self.state();
        (from != to).then_some(Transition { from, to })
    }

    /// The probe was dropped before it finished: the next call probes instead.
    pub(crate) fn probe_abandoned(&mut self) {
        if let State::HalfOpen { .. } = self.state {
            self.state = State::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    /// The consecutive transient failures counted while closed.
    pub(crate) fn failures(&self) -> u32 {
        match self.state {
            State::Closed { failures } => failures,
            _ => self.failures_to_open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every time is passed in: no clock runs, so no runtime (or paused clock) is needed.
    #[test]
    fn every_transition_at_its_given_time() {
        let mut breaker = Breaker::new(2, Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(breaker.admit(|| t0), Ok((Pass::Through, None)));
        assert_eq!(
            breaker.record(Pass::Through, Outcome::TransientFailure, || t0),
            None
        );
        // An answer in between resets the count.
        assert_eq!(
            breaker.record(Pass::Through, Outcome::Answered, || t0),
            None
        );
        assert_eq!(
            breaker.record(Pass::Through, Outcome::TransientFailure, || t0),
            None
        );
        let opened = breaker.record(Pass::Through, Outcome::TransientFailure, || t0);
        assert_eq!(opened.map(|t| t.to), Some(BreakerState::Open));
        assert_eq!(
            breaker.admit(|| t0 + Duration::from_secs(10)),
            Err(Some(Duration::from_secs(20)))
        );
        let at = t0 + Duration::from_secs(30);
        let (pass, transition) = breaker.admit(|| at).unwrap();
        assert_eq!(
            (pass, transition.map(|t| t.to)),
            (Pass::Probe, Some(BreakerState::HalfOpen))
        );
        assert_eq!(breaker.admit(|| at), Err(None), "one probe at a time");
        breaker.probe_abandoned();
        assert_eq!(breaker.admit(|| at), Ok((Pass::Probe, None)));
        let reopened = breaker.record(Pass::Probe, Outcome::TransientFailure, || at);
        assert_eq!(reopened.map(|t| t.to), Some(BreakerState::Open));
        assert_eq!(
            breaker.admit(|| at + Duration::from_secs(1)),
            Err(Some(Duration::from_secs(29)))
        );
        let later = at + Duration::from_secs(30);
        assert_eq!(breaker.admit(|| later).map(|(p, _)| p), Ok(Pass::Probe));
        let closed = breaker.record(Pass::Probe, Outcome::Answered, || later);
        assert_eq!(closed.map(|t| t.to), Some(BreakerState::Closed));
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let mut breaker = Breaker::new(0, Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                breaker.record(Pass::Through, Outcome::TransientFailure, || now),
                None
            );
        }
        assert_eq!(breaker.admit(|| now), Ok((Pass::Through, None)));
    }
}
