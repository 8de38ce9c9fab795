//! A family's price per million tokens, and the arithmetic from token counts to dollars.

use crate::model::provider::Provider;
use crate::units::cost::{Cost, Usage};

/// The price of a prompt token written to the cache, in multiples of the input price.
///
/// Only Anthropic (`cache_creation_input_tokens`) and OpenAI's newest models
/// (`prompt_tokens_details.cache_write_tokens`) report cache writes. Anthropic lists a
/// 5-minute cache write at 1.25 times the base input price and a 1-hour write at 2 times
/// (docs.anthropic.com/en/docs/about-claude/pricing, 2025-09); the usage does not say which
/// TTL was written, so writes are priced as 5-minute ones.
pub const CACHE_WRITE_PRICE_FACTOR: f64 = 1.25;

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

    /// What `usage` costs: uncached input at the input price, cache reads at the cached price,
    /// cache writes at [`CACHE_WRITE_PRICE_FACTOR`] times the input price, output at the output
    /// price.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::prices::Price;
    /// use ratelimited::Usage;
    /// let sonnet = Price::per_million(3.0, 0.30, 15.0);
    /// let cached = Usage::new(1_000_000, 0).with_cache_reads(900_000);
    /// assert!((sonnet.of_usage(cached) - (0.30 + 0.27)).abs() < 1e-9);
    /// ```
    pub fn of_usage(&self, usage: Usage) -> f64 {
        let input = usage.uncached_input_tokens() as f64 * self.input
            + usage.cache_read_input_tokens as f64 * self.cached_input
            + usage.cache_creation_input_tokens as f64 * self.input * CACHE_WRITE_PRICE_FACTOR;
        (input + usage.output_tokens as f64 * self.output) / 1_000_000.0
    }

    /// The most a reservation can cost: its input estimate at the (uncached) input price and
    /// its whole output budget (`n × max_tokens`) at the output price.
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
