//! Spend limits: how many tokens and how many dollars a family, or the whole process, may
//! still use. Not to be confused with `budget.rs`, the *output* budget of one request.
//!
//! Like the limiter, a ledger reserves before the call and settles after it, so concurrent
//! calls cannot overspend together: a call reserves its prompt estimate plus `n × max_tokens`
//! (in dollars: the estimate at the input price and the output budget at the output price),
//! and settles to the usage its response reports. A failed call spends nothing (providers bill
//! answers, not errors); a call whose usage is unknown (no usage in the response, a stream, a
//! call dropped after it was sent) keeps its whole reservation, which can only overstate.
//!
//! Money is kept in whole nano-dollars (`Nanodollars`): each price is rounded once, when it
//! enters a ledger, and from there sums and comparisons are exact, so a reservation is refused
//! only when it exceeds what is left, never because of a rounding error.

use crate::units::error::Error;
use crate::units::money::{Amount, Nanodollars, SpendLimit};

/// What a call holds on a ledger between admission and settle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hold {
    pub(crate) tokens: u64,
    /// Zero when the family has no price (it then cannot have a dollar budget).
    pub(crate) usd: Nanodollars,
}

/// One budget: its limit, what was spent, what calls in flight hold.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// `the process-wide` or `the openai/gpt-4o`: how messages name it.
    owner: String,
    tokens: Option<u64>,
    usd: Option<Nanodollars>,
    spent: Hold,
    held: Hold,
}

/// What a budget has left, for [`stats`](crate::Registry::stats); `None` where unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BudgetLeft {
    /// Tokens left, reservations of calls in flight taken off.
    pub tokens: Option<u64>,
    /// US dollars left, reservations of calls in flight taken off: the ledger counts whole
    /// nano-dollars, this is the nearest `f64`.
    pub usd: Option<f64>,
}

impl Ledger {
    /// A ledger for `limit`, its dollars rounded to the nearest nano-dollar.
    pub(crate) fn new(owner: impl Into<String>, limit: SpendLimit) -> Self {
        Ledger {
            owner: owner.into(),
            tokens: limit.tokens,
            usd: limit.usd.map(Nanodollars::from_usd),
            spent: Hold::default(),
            held: Hold::default(),
        }
    }

    pub(crate) fn is_unlimited(&self) -> bool {
        self.tokens.is_none() && self.usd.is_none()
    }

    pub(crate) fn left(&self) -> BudgetLeft {
        BudgetLeft {
            tokens: self.tokens_left(),
            usd: self.usd_left().map(Nanodollars::to_usd),
        }
    }

    fn tokens_left(&self) -> Option<u64> {
        let used = self.spent.tokens.saturating_add(self.held.tokens);
        self.tokens.map(|limit| limit.saturating_sub(used))
    }

    fn usd_left(&self) -> Option<Nanodollars> {
        let used = self.spent.usd.saturating_add(self.held.usd);
        self.usd.map(|limit| limit.saturating_sub(used))
    }

    /// `Ok` if `hold` fits in what is left (exactly filling it fits); otherwise the error
    /// naming this budget.
    pub(crate) fn check(&self, hold: Hold) -> Result<(), Error> {
        if let Some(remaining) = self.tokens_left().filter(|left| hold.tokens > *left) {
            return Err(Error::BudgetExhausted {
                budget: format!("{} token budget", self.owner),
                remaining: Amount::Tokens(remaining),
                requested: Amount::Tokens(hold.tokens),
            });
        }
        if let Some(remaining) = self.usd_left().filter(|left| hold.usd > *left) {
            return Err(Error::BudgetExhausted {
                budget: format!("{} USD budget", self.owner),
                remaining: Amount::Usd(remaining.to_usd()),
                requested: Amount::Usd(hold.usd.to_usd()),
            });
        }
        Ok(())
    }

    /// Forgets what was spent (a new period of a per-day budget); holds stay.
    pub(crate) fn forget_spent(&mut self) {
        self.spent = Hold::default();
    }

    pub(crate) fn hold(&mut self, hold: Hold) {
        self.held = add(self.held, hold);
    }

    /// Releases `held` and records `spent` in its place.
    pub(crate) fn settle(&mut self, held: Hold, spent: Hold) {
        self.held = Hold {
            tokens: self.held.tokens.saturating_sub(held.tokens),
            usd: self.held.usd.saturating_sub(held.usd),
        };
        self.spent = add(self.spent, spent);
    }
}

fn add(a: Hold, b: Hold) -> Hold {
    Hold {
        tokens: a.tokens.saturating_add(b.tokens),
        usd: a.usd.saturating_add(b.usd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_count_against_what_is_left_until_settled() {
        let mut ledger = Ledger::new("the process-wide", SpendLimit::tokens(1_000));
        let big = Hold {
            tokens: 600,
            usd: Nanodollars::ZERO,
        };
        ledger.check(big).unwrap();
        ledger.hold(big);
        assert_eq!(
            ledger.check(big),
            Err(Error::BudgetExhausted {
                budget: "the process-wide token budget".into(),
                remaining: Amount::Tokens(400),
                requested: Amount::Tokens(600),
            })
        );
        ledger.settle(
            big,
            Hold {
                tokens: 250,
                usd: Nanodollars::ZERO,
            },
        );
        assert_eq!(ledger.left().tokens, Some(750));
        assert_eq!(ledger.left().usd, None);
    }

    #[test]
    fn a_dollar_reservation_that_exactly_fits_is_admitted() {
        let mut ledger = Ledger::new("the process-wide", SpendLimit::usd(0.0006));
        let call = Hold {
            tokens: 500,
            usd: Nanodollars::from_usd((400.0 * 0.15 + 100.0 * 0.6) / 1e6),
        };
        for _ in 0..5 {
            ledger.check(call).unwrap();
            ledger.hold(call);
            ledger.settle(call, call);
        }
        assert_eq!(ledger.left().usd, Some(0.0));
        assert_eq!(
            ledger.check(call),
            Err(Error::BudgetExhausted {
                budget: "the process-wide USD budget".into(),
                remaining: Amount::Usd(0.0),
                requested: Amount::Usd(0.00012),
            })
        );
    }
}
