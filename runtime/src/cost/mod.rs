//! What calls cost in money: a dated list-price table per limit family, overridable by env
//! and code, and the arithmetic from token counts to US dollars.
//!
//! [`Usage`] carries no count of cached prompt tokens, so every input token is priced as
//! uncached: a run that hits the provider's prompt cache costs less than reported here, never
//! more. The cached price is kept in the table for when usage reports it.

mod table;

use crate::family::LimitFamily;
use crate::provider::Provider;
use crate::quota::{Cost, Usage};

/// US dollars per one million tokens of each kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// Uncached input (prompt) tokens.
    pub input: f64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: f64,
    /// Output (completion) tokens.
    pub output: f64,
}

impl Price {
    /// A price from USD per one million input, cached input and output tokens.
    pub const fn per_million(input: f64, cached_input: f64, output: f64) -> Self {
        Price {
            input,
            cached_input,
            output,
        }
    }

    /// What `usage` costs, all input priced as uncached (see the module docs).
    pub fn of_usage(&self, usage: Usage) -> f64 {
        self.of_tokens(usage.input_tokens, usage.output_tokens)
    }

    /// The most a reservation can cost: its input estimate at the input price and its whole
    /// output budget (`n × max_tokens`) at the output price.
    pub fn of_reservation(&self, cost: Cost) -> f64 {
        self.of_tokens(cost.input_tokens, cost.output_tokens)
    }

    fn of_tokens(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }
}

/// One row of the built-in price table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriceEntry {
    /// The family's provider.
    pub provider: Provider,
    /// The limit family id (`gpt-4o`).
    pub family: &'static str,
    /// The list price.
    pub price: Price,
    /// Where the figures come from.
    pub source: &'static str,
    /// When the source said so (`YYYY-MM`).
    pub date: &'static str,
}

/// The built-in list price of `family`, with its source and date; Azure deployments have none
/// (their names are the user's own), set one with `RATE_LIMITED_<FAMILY>_PRICE`.
///
/// ```
/// use ratelimited_runtime::config::{LimitFamily, Provider};
/// use ratelimited_runtime::cost::built_in_price;
/// let entry = built_in_price(&LimitFamily::of(Provider::OpenAi, "gpt-4o-mini")).unwrap();
/// assert_eq!(entry.price.output, 0.60);
/// ```
pub fn built_in_price(family: &LimitFamily) -> Option<&'static PriceEntry> {
    table::PRICES
        .iter()
        .find(|entry| entry.provider == family.provider && entry.family == family.id)
}

/// Every row of the built-in price table.
pub fn built_in_prices() -> &'static [PriceEntry] {
    table::PRICES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_reservations_are_priced_per_million() {
        let price = Price::per_million(2.5, 1.25, 10.0);
        assert_eq!(price.of_usage(Usage::new(1_000_000, 0)), 2.5);
        assert_eq!(price.of_usage(Usage::new(400, 100)), 0.002);
        assert_eq!(price.of_reservation(Cost::request(1_000, 500)), 0.0075);
    }

    #[test]
    fn every_row_is_dated_sourced_and_unique() {
        for (i, entry) in built_in_prices().iter().enumerate() {
            assert!(
                entry.date.len() == 7 && !entry.source.is_empty(),
                "{entry:?}"
            );
            assert!(entry.price.cached_input <= entry.price.input, "{entry:?}");
            assert!(
                !built_in_prices()[..i]
                    .iter()
                    .any(|e| e.provider == entry.provider && e.family == entry.family),
                "duplicate {entry:?}"
            );
        }
        let dated = LimitFamily::of(Provider::Anthropic, "claude-sonnet-4-5-20250929");
        assert_eq!(built_in_price(&dated).unwrap().price.input, 3.0);
    }
}
