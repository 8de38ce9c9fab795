//! What calls cost in money: a dated list-price table per limit family, overridable by env
//! and code, and the arithmetic from token counts to US dollars.
//!
//! [`Usage`](crate::units::cost::Usage) carries no count of cached prompt tokens, so every input token is priced as
//! uncached: a run that hits the provider's prompt cache costs less than reported here, never
//! more. The cached price is kept in the table for when usage reports it.

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod price;

mod table;

pub use price::{Price, PriceEntry};

use crate::model::limit_family::LimitFamily;

/// The built-in list price of `family`, with its source and date; Azure deployments have none
/// (their names are the user's own), set one with `RATE_LIMITED_<FAMILY>_PRICE`.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::config::{LimitFamily, Provider};
/// use ratelimited::prices::built_in_price;
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
    use crate::model::provider::Provider;
    use crate::units::cost::{Cost, Usage};

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
