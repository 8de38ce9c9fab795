//! The routing decision alone: given when each deployment would admit the call, which one
//! takes it. Pure, so the rule reads (and is tested) apart from the waiting.

use tokio::time::Instant;

use super::queue::SitOut;
use crate::config::pool::Routing;
use crate::limiter::Forecast;

/// A deployment that could take the call, and when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    /// Its place in the pool's order.
    pub(super) index: usize,
    pub(super) forecast: Forecast,
}

impl Candidate {
    /// Earlier is better: a known time before a concurrency slot nobody can date, then the
    /// time, then the pool's order.
    fn key(&self) -> (bool, Instant, usize) {
        let (on_release, at) = self.when();
        (on_release, at, self.index)
    }

    /// When, without the order.
    fn when(&self) -> (bool, Instant) {
        let on_release = matches!(self.forecast, Forecast::OnRelease { .. });
        (
            on_release,
            self.forecast.earliest().unwrap_or_else(far_future),
        )
    }
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

/// The candidate `routing` picks (candidates in the pool's order, none too large).
///
/// - [`Routing::Soonest`]: the soonest admission of the whole cost, ties to the earlier one in
///   order; a deployment whose in-flight cap is full comes after every dated one.
/// - [`Routing::Ordered`]: the first in order that admits within `spill_after` of `now` (a
///   wait of exactly `spill_after` stays), else the soonest.
pub(super) fn choose(
    routing: Routing,
    candidates: &[Candidate],
    now: Instant,
) -> Option<Candidate> {
    if let Routing::Ordered { spill_after } = routing {
        let within = candidates.iter().find(|c| {
            matches!(c.forecast, Forecast::At(_) | Forecast::Unknown { .. })
                && c.forecast
                    .wait_from(now)
                    .is_some_and(|wait| wait <= spill_after)
        });
        if let Some(first) = within {
            return Some(*first);
        }
    }
    candidates.iter().min_by_key(|c| c.key()).copied()
}

/// Whether a waiter already queued on `current` should move to `best`: only for a strictly
/// better key under the soonest rule (a tie stays put, keeping its place in that limiter's
/// queue), and whenever the ordered rule prefers another.
pub(super) fn should_move(routing: Routing, current: &Candidate, best: &Candidate) -> bool {
    if current.index == best.index {
        return false;
    }
    match routing {
        Routing::Soonest => best.when() < current.when(),
        Routing::Ordered { .. } => true,
    }
}

/// When a deployment would admit the call for a tenant: its limiter's `forecast`, and not
/// before the tenant's `cap` there lets it in (a full concurrency cap makes it wait for a
/// release). A forecast the pool cannot date locally stays unknown: on a shared store the
/// tenant's cap is asked with the deployment's buckets (`date_shared`).
pub(super) fn under_cap(forecast: Forecast, cap: Forecast) -> Forecast {
    let Some(cap_at) = cap.earliest() else {
        return forecast;
    };
    let on_release = matches!(cap, Forecast::OnRelease { .. });
    match forecast {
        Forecast::At(at) if on_release => Forecast::OnRelease {
            not_before: at.max(cap_at),
        },
        Forecast::At(at) => Forecast::At(at.max(cap_at)),
        Forecast::OnRelease { not_before } => Forecast::OnRelease {
            not_before: not_before.max(cap_at),
        },
        Forecast::Unknown { not_before } => Forecast::Unknown {
            not_before: not_before.max(cap_at),
        },
        Forecast::TooLarge { .. } => forecast,
    }
}

/// Whether a head sits out its tenant's caps (`caps`: the cap's forecast on each deployment
/// that could take the call): when none lets it in now, until the first refills, or until a
/// call ends where only a concurrency cap is full.
pub(super) fn sit_out(caps: &[Forecast], now: Instant) -> Option<SitOut> {
    if caps.is_empty() {
        return None;
    }
    let mut until: Option<Instant> = None;
    let mut on_release = false;
    for cap in caps {
        match *cap {
            Forecast::At(at) if at <= now => return None,
            Forecast::At(at) => until = Some(until.map_or(at, |u| u.min(at))),
            Forecast::OnRelease { .. } => on_release = true,
            // Unknown (a shared store, no caps) or too large (refused apart).
            _ => return None,
        }
    }
    Some(SitOut { until, on_release })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(index: usize, now: Instant, ms: u64) -> Candidate {
        Candidate {
            index,
            forecast: Forecast::At(now + Duration::from_millis(ms)),
        }
    }

    #[test]
    fn the_soonest_wins_and_ties_go_by_order() {
        let now = Instant::now();
        let c = [at(0, now, 30), at(1, now, 10), at(2, now, 10)];
        assert_eq!(choose(Routing::Soonest, &c, now).unwrap().index, 1);
        let slot = Candidate {
            index: 0,
            forecast: Forecast::OnRelease { not_before: now },
        };
        let c = [slot, at(1, now, 500)];
        assert_eq!(choose(Routing::Soonest, &c, now).unwrap().index, 1);
    }

    #[test]
    fn strict_order_spills_over_past_the_threshold_only() {
        let now = Instant::now();
        let ordered = Routing::Ordered {
            spill_after: Duration::from_millis(250),
        };
        let c = [at(0, now, 250), at(1, now, 0)];
        assert_eq!(choose(ordered, &c, now).unwrap().index, 0);
        let c = [at(0, now, 251), at(1, now, 0)];
        assert_eq!(choose(ordered, &c, now).unwrap().index, 1);
        // Nobody within the threshold: the soonest.
        let c = [at(0, now, 900), at(1, now, 400), at(2, now, 300)];
        assert_eq!(choose(ordered, &c, now).unwrap().index, 2);
    }

    #[test]
    fn a_tenant_cap_delays_a_deployment_and_sits_out_only_where_it_binds_everywhere() {
        let now = Instant::now();
        let ms = |n| now + Duration::from_millis(n);
        assert_eq!(
            under_cap(Forecast::At(ms(10)), Forecast::At(ms(500))),
            Forecast::At(ms(500))
        );
        assert_eq!(
            under_cap(
                Forecast::At(ms(10)),
                Forecast::OnRelease { not_before: now }
            ),
            Forecast::OnRelease { not_before: ms(10) }
        );
        // Free on one deployment: no sitting out, even if that one's limiter is busy.
        assert_eq!(
            sit_out(&[Forecast::At(ms(900)), Forecast::At(now)], now),
            None
        );
        assert_eq!(
            sit_out(
                &[
                    Forecast::At(ms(900)),
                    Forecast::At(ms(300)),
                    Forecast::OnRelease { not_before: now }
                ],
                now
            ),
            Some(SitOut {
                until: Some(ms(300)),
                on_release: true
            })
        );
    }

    #[test]
    fn a_waiter_moves_only_for_something_strictly_sooner() {
        let now = Instant::now();
        assert!(!should_move(
            Routing::Soonest,
            &at(1, now, 10),
            &at(0, now, 10)
        ));
        assert!(should_move(
            Routing::Soonest,
            &at(1, now, 10),
            &at(0, now, 9)
        ));
    }
}
