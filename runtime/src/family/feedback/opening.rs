//! The opening burst: what a family may send before the server has answered once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::units::cost::{Cost, Dimension};

use crate::units::quota::Quota;

/// The share of each bucket a family may spend before its first server response.
///
/// Until then every estimate is unverified: a character-charging server, a tier that is not
/// the account's, or another process on the same key all show up only in the first response's
/// headers. A full bucket released at once on such an estimate is a batch start of 429s; a
/// quarter of it keeps the start fast (the rest follows one response latency later) while
/// leaving room for an estimate that is off by a large factor.
pub const OPENING_BURST_FRACTION: f64 = 0.25;

/// The longest a call waits for the first response before the gate opens anyway, so that
/// calls that were cancelled or hang never hold the family back.
pub const OPENING_MAX_WAIT: Duration = Duration::from_secs(10);

/// Admits calls while their total stays within the opening budget, until the first response
/// (or [`OPENING_MAX_WAIT`]) opens it for good; the waiters then go in arrival order.
#[derive(Debug)]
pub(crate) struct OpeningBurst {
    /// What the budget counts: tokens when a token dimension is limited, else requests.
    unit: Option<Dimension>,
    open: AtomicBool,
    /// The whole budget, in `unit`s.
    size: u64,
    budget: Arc<Semaphore>,
    /// When the first call came to the gate.
    first: OnceLock<Instant>,
}

/// A call's part of the opening budget, held until its request is sent: a call refused
/// before it sends (too large, a budget, its caller gone) gives it back.
#[must_use = "a call's opening allowance is given back when dropped: `spent` once sent"]
pub(crate) struct OpeningPermit(Option<OwnedSemaphorePermit>);

impl OpeningPermit {
    /// No part of any budget (a gate not passed through).
    pub(crate) fn none() -> Self {
        OpeningPermit(None)
    }

    /// The request was sent: its part of the budget is spent.
    pub(crate) fn spent(self) {
        if let Some(permit) = self.0 {
            permit.forget();
        }
    }
}

impl OpeningBurst {
    pub(crate) fn new(quota: &Quota) -> Self {
        let unit = [
            Dimension::TokensPerMinute,
            Dimension::InputTokensPerMinute,
            Dimension::RequestsPerMinute,
        ]
        .into_iter()
        .find(|d| quota.capacity(*d).is_some());
        let budget = unit
            .and_then(|d| quota.capacity(d))
            .map_or(0, opening_budget);
        OpeningBurst {
            unit,
            open: AtomicBool::new(unit.is_none()),
            size: budget,
            budget: Arc::new(Semaphore::new(
                usize::try_from(budget).unwrap_or(usize::MAX),
            )),
            first: OnceLock::new(),
        }
    }

    /// Whether the first response has opened the gate.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Whether `cost` would pass the gate now (it is open, or the budget has room for it).
    pub(crate) fn would_admit(&self, cost: &Cost) -> bool {
        let Some(unit) = self.unit else {
            return true;
        };
        if self.is_open() {
            return true;
        }
        // As a waiter's would, the gate gives up holding back once the first call through it
        // has waited the longest a call waits for the first response.
        if self
            .first
            .get()
            .is_some_and(|first| first.elapsed() >= OPENING_MAX_WAIT)
        {
            self.open();
            return true;
        }
        let units = unit.charge(cost).min(self.size).max(1);
        u64::try_from(self.budget.available_permits()).unwrap_or(u64::MAX) >= units
    }

    /// Waits until `cost` fits the opening budget, or the gate opens; the permit holds the
    /// call's part until its request is sent.
    pub(crate) async fn admit(&self, cost: &Cost) -> OpeningPermit {
        let Some(unit) = self.unit else {
            return OpeningPermit(None);
        };
        if self.is_open() {
            return OpeningPermit(None);
        }
        self.first.get_or_init(Instant::now);
        // A call larger than the whole budget goes when it is alone, not never.
        let units = unit.charge(cost).min(self.size).max(1);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let budget = Arc::clone(&self.budget);
        match tokio::time::timeout(OPENING_MAX_WAIT, budget.acquire_many_owned(units)).await {
            Ok(Ok(permit)) => OpeningPermit(Some(permit)),
            // Closed never happens; a timeout means no response came: stop holding back.
            Ok(Err(_)) | Err(_) => {
                self.open();
                OpeningPermit(None)
            }
        }
    }

    /// Opens the gate for good (the server has answered): every waiter goes on (closed, the
    /// budget turns them all away to the limiter, which keeps their order), and permits held
    /// by calls still before their send come back to a budget nobody reads.
    pub(crate) fn open(&self) {
        if !self.open.swap(true, Ordering::AcqRel) {
            self.budget.close();
        }
    }
}

/// The opening budget of a bucket of `capacity` units: [`OPENING_BURST_FRACTION`] of it, at
/// least one unit and at most what one semaphore acquisition can take.
fn opening_budget(capacity: u64) -> u64 {
    ((capacity as f64 * OPENING_BURST_FRACTION).floor() as u64).clamp(1, u64::from(u32::MAX))
}
