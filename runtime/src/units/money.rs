//! Amounts of a budget, in tokens or US dollars, the limits a budget sets on them, and the
//! whole nano-dollars a ledger keeps money in.

use std::fmt;

/// An amount of a budget: tokens or US dollars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// Tokens (input + output).
    Tokens(u64),
    /// US dollars.
    Usd(f64),
}

impl fmt::Display for Amount {
    /// `22,117 tokens`, `$0.012345`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Tokens(tokens) => write!(f, "{} tokens", thousands(*tokens)),
            Amount::Usd(usd) => write!(f, "${usd:.6}"),
        }
    }
}

/// `22117` → `22,117`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Over what a tenant's budget counts: the whole run, or each day (24 hours from the tenant's
/// first call, then the next 24, ...), set by `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// Over the run (the default).
    #[default]
    Total,
    /// Per day: what was spent is forgotten every 24 hours (calls in flight stay held).
    Day,
}

impl BudgetPeriod {
    /// What `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD` accepts.
    pub const ACCEPTED: &'static str =
        "`total` (over the run, the default) or `day` (every 24 hours)";

    /// `total` or `day`, in any case.
    pub fn parse(value: &str) -> Option<BudgetPeriod> {
        match value.trim().to_ascii_lowercase().as_str() {
            "total" => Some(BudgetPeriod::Total),
            "day" => Some(BudgetPeriod::Day),
            _ => None,
        }
    }
}

/// How much may be used, in tokens, in US dollars, or both; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpendLimit {
    /// Tokens (input + output, as the calls report them).
    pub tokens: Option<u64>,
    /// US dollars, at the family's price.
    pub usd: Option<f64>,
}

impl SpendLimit {
    /// No limit.
    pub const NONE: SpendLimit = SpendLimit {
        tokens: None,
        usd: None,
    };

    /// A limit in tokens.
    pub const fn tokens(tokens: u64) -> Self {
        SpendLimit {
            tokens: Some(tokens),
            usd: None,
        }
    }

    /// A limit in US dollars.
    pub const fn usd(usd: f64) -> Self {
        SpendLimit {
            tokens: None,
            usd: Some(usd),
        }
    }

    /// True when neither amount is limited.
    pub fn is_unlimited(&self) -> bool {
        self.tokens.is_none() && self.usd.is_none()
    }
}

/// US dollars as a whole number of nano-dollars ($10⁻⁹): how a ledger keeps money, so that
/// adding calls up and comparing a reservation with what is left are exact. In `f64`, five
/// reservations of $0.00012 leave 0.00011999999999999994 of $0.0006 and refuse the fifth call,
/// which fits exactly.
///
/// Prices and limits are `f64` dollars; each amount is rounded to the nearest nano-dollar once,
/// where it enters the ledger, and never again. Nano, not micro: a micro-dollar is as much as
/// 50 tokens at the cheapest list prices ($0.02 per million), so rounding every small call to
/// whole micro-dollars could over- or under-charge it by half its cost; half a nano-dollar per
/// call is $0.0005 in a million calls, and every built-in list price is a whole number of
/// nano-dollars per token, so at those prices rounding removes only `f64` noise. A `u64` of
/// nano-dollars holds $18 billion: larger amounts saturate, which for a limit is as good as none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanodollars(u64);

impl Nanodollars {
    pub(crate) const ZERO: Nanodollars = Nanodollars(0);

    /// `usd` rounded to the nearest nano-dollar (halves away from zero); negative amounts and
    /// NaN are zero, amounts past `u64::MAX` nano-dollars saturate.
    pub(crate) fn from_usd(usd: f64) -> Self {
        // `as` saturates, and maps NaN to zero.
        Nanodollars((usd * NANOS_PER_USD).round() as u64)
    }

    /// Whole nano-dollars.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn nanos(self) -> u64 {
        self.0
    }

    /// `nanos` nano-dollars.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_nanos(nanos: u64) -> Self {
        Nanodollars(nanos)
    }

    /// In US dollars, for display: the `f64` nearest to the exact amount.
    pub(crate) fn to_usd(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD
    }

    pub(crate) fn saturating_add(self, other: Nanodollars) -> Nanodollars {
        Nanodollars(self.0.saturating_add(other.0))
    }

    pub(crate) fn saturating_sub(self, other: Nanodollars) -> Nanodollars {
        Nanodollars(self.0.saturating_sub(other.0))
    }
}

const NANOS_PER_USD: f64 = 1e9;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(Amount::Tokens(22_117).to_string(), "22,117 tokens");
        assert_eq!(Amount::Tokens(999).to_string(), "999 tokens");
        assert_eq!(Amount::Usd(0.0125).to_string(), "$0.012500");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn dollars_round_to_the_nearest_nano_dollar_once() {
        let call = Nanodollars::from_usd((400.0 * 0.15 + 100.0 * 0.6) / 1e6);
        assert_eq!(call, Nanodollars(120_000));
        let five = (0..5).fold(Nanodollars::ZERO, |sum, _| sum.saturating_add(call));
        assert_eq!(five, Nanodollars::from_usd(0.0006));
        assert_eq!(five.to_usd(), 0.0006);
        assert_eq!(Nanodollars::from_usd(0.4e-9), Nanodollars::ZERO);
        assert_eq!(Nanodollars::from_usd(0.6e-9), Nanodollars(1));
        assert_eq!(Nanodollars::from_usd(-1.0), Nanodollars::ZERO);
        assert_eq!(Nanodollars::from_usd(f64::NAN), Nanodollars::ZERO);
        assert_eq!(Nanodollars::from_usd(1e30), Nanodollars(u64::MAX));
    }
}
