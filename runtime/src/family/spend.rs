//! Spend limits: how many tokens and how many dollars a family, or the whole process, may
//! still use. Not to be confused with `budget.rs`, the *output* budget of one request.
//!
//! Like the limiter, a ledger reserves before the call and settles after it, so concurrent
//! calls cannot overspend together: a call reserves its prompt estimate plus `n × max_tokens`
//! (in dollars: the estimate at the input price and the output budget at the output price),
//! and settles to the usage its response reports. A failed call spends nothing (providers bill
//! answers, not errors); a call whose usage is unknown (no usage in the response, a stream, a
//! call dropped after it was sent) keeps its whole reservation, which can only overstate.

use crate::units::error::Error;
use crate::units::money::{Amount, SpendLimit};

/// What a call holds on a ledger between admission and settle.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Hold {
    pub(crate) tokens: u64,
    /// `None` when the family has no price.
    pub(crate) usd: Option<f64>,
}

/// One budget: its limit, what was spent, what calls in flight hold.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// `the process-wide` or `the openai/gpt-4o`: how messages name it.
    owner: String,
    limit: SpendLimit,
    spent: Hold,
    held: Hold,
}

/// What a budget has left, for [`stats`](crate::Registry::stats); `None` where unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BudgetLeft {
    /// Tokens left, reservations of calls in flight taken off.
    pub tokens: Option<u64>,
    /// US dollars left, reservations of calls in flight taken off.
    pub usd: Option<f64>,
}

impl Ledger {
    pub(crate) fn new(owner: impl Into<String>, limit: SpendLimit) -> Self {
        Ledger {
            owner: owner.into(),
            limit,
            spent: Hold {
                tokens: 0,
                usd: Some(0.0),
            },
            held: Hold {
                tokens: 0,
                usd: Some(0.0),
            },
        }
    }

    pub(crate) fn is_unlimited(&self) -> bool {
        self.limit.is_unlimited()
    }

    pub(crate) fn left(&self) -> BudgetLeft {
        BudgetLeft {
            tokens: self.limit.tokens.map(|limit| {
                limit.saturating_sub(self.spent.tokens.saturating_add(self.held.tokens))
            }),
            usd: self.limit.usd.map(|limit| {
                (limit - self.spent.usd.unwrap_or(0.0) - self.held.usd.unwrap_or(0.0)).max(0.0)
            }),
        }
    }

    /// `Ok` if `hold` fits in what is left; otherwise the error naming this budget.
    pub(crate) fn check(&self, hold: Hold) -> Result<(), Error> {
        let left = self.left();
        if let Some(remaining) = left.tokens.filter(|left| hold.tokens > *left) {
            return Err(Error::BudgetExhausted {
                budget: format!("{} token budget", self.owner),
                remaining: Amount::Tokens(remaining),
                requested: Amount::Tokens(hold.tokens),
            });
        }
        if let (Some(remaining), Some(usd)) = (left.usd, hold.usd) {
            if usd > remaining {
                return Err(Error::BudgetExhausted {
                    budget: format!("{} USD budget", self.owner),
                    remaining: Amount::Usd(remaining),
                    requested: Amount::Usd(usd),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn hold(&mut self, hold: Hold) {
        self.held = add(self.held, hold);
    }

    /// Releases `held` and records `spent` in its place.
    pub(crate) fn settle(&mut self, held: Hold, spent: Hold) {
        self.held = Hold {
            tokens: self.held.tokens.saturating_sub(held.tokens),
            usd: Some((self.held.usd.unwrap_or(0.0) - held.usd.unwrap_or(0.0)).max(0.0)),
        };
        self.spent = add(self.spent, spent);
    }
}

fn add(a: Hold, b: Hold) -> Hold {
    Hold {
        tokens: a.tokens.saturating_add(b.tokens),
        usd: Some(a.usd.unwrap_or(0.0) + b.usd.unwrap_or(0.0)),
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
            usd: None,
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
                usd: None,
            },
        );
        assert_eq!(ledger.left().tokens, Some(750));
        assert_eq!(ledger.left().usd, None);
    }
}
