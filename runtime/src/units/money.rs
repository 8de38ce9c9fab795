//! Amounts of a budget, in tokens or US dollars, and the limits a budget sets on them.

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
}
