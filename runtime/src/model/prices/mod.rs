//! What calls cost in money: a dated list-price table per limit family, overridable by env
//! and code, and the arithmetic from token counts to US dollars.
//!
//! Input read from the provider's prompt cache is priced at the table's cached price, input
//! written to it at [`CACHE_WRITE_PRICE_FACTOR`] times the input price, the rest at the input
//! price ([`Price::of_usage`]). A reservation, made before anyone knows what the cache will
//! serve, is priced as uncached: the most the call can cost.

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod price;

mod table;

pub use price::{Price, PriceEntry, CACHE_WRITE_PRICE_FACTOR};

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
        // 1M prompt tokens: 100k uncached, 800k read (half price), 100k written (1.25x).
        let cached = Usage::new(1_000_000, 0)
            .with_cache_reads(800_000)
            .with_cache_writes(100_000);
        let expected = (100_000.0 * 2.5 + 800_000.0 * 1.25 + 100_000.0 * 2.5 * 1.25) / 1e6;
        assert!((price.of_usage(cached) - expected).abs() < 1e-12);
        assert!(price.of_usage(cached) < price.of_usage(Usage::new(1_000_000, 0)));
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
