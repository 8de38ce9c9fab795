//! A family's price per million tokens, and the arithmetic from token counts to dollars.

use crate::model::provider::Provider;
use crate::units::cost::{Cost, Usage};

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
