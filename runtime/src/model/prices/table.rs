//! The built-in list prices, one row per line: provider, family, USD per 1M input, cached
//! input and output tokens, source, date.
//!
//! List prices change; these are what the providers' pricing pages said on the date given.
//! Override with `RATE_LIMITED_<FAMILY>_PRICE` or [`Registry::price`](crate::Registry::price).

use super::price::{Price, PriceEntry};
use crate::model::provider::Provider;

const OPENAI: &str = "openai.com/api/pricing";
const ANTHROPIC: &str = "docs.anthropic.com/en/docs/about-claude/pricing";
const GEMINI: &str = "ai.google.dev/gemini-api/docs/pricing";

const fn row(
    provider: Provider,
    family: &'static str,
    per_million: [f64; 3],
    source: &'static str,
    date: &'static str,
) -> PriceEntry {
    PriceEntry {
        provider,
        family,
        price: Price::per_million(per_million[0], per_million[1], per_million[2]),
        source,
        date,
    }
}

use Provider::{Anthropic as AN, Gemini as GE, OpenAi as OA};

/// Every built-in price. A family missing here has no cost until one is set.
#[rustfmt::skip]
pub(super) static PRICES: &[PriceEntry] = &[
    row(OA, "gpt-4o", [2.50, 1.25, 10.00], OPENAI, "2025-09"),
    row(OA, "gpt-4o-mini", [0.15, 0.075, 0.60], OPENAI, "2025-09"),
    row(OA, "gpt-4.1", [2.00, 0.50, 8.00], OPENAI, "2025-09"),
    row(OA, "gpt-4.1-mini", [0.40, 0.10, 1.60], OPENAI, "2025-09"),
    row(OA, "gpt-4.1-nano", [0.10, 0.025, 0.40], OPENAI, "2025-09"),
    row(OA, "gpt-4-turbo", [10.00, 10.00, 30.00], OPENAI, "2025-09"),
    row(OA, "gpt-4", [30.00, 30.00, 60.00], OPENAI, "2025-09"),
    row(OA, "gpt-3.5-turbo", [0.50, 0.50, 1.50], OPENAI, "2025-09"),
    row(OA, "o1", [15.00, 7.50, 60.00], OPENAI, "2025-09"),
    row(OA, "o1-mini", [1.10, 0.55, 4.40], OPENAI, "2025-09"),
    row(OA, "o3", [2.00, 0.50, 8.00], OPENAI, "2025-09"),
    row(OA, "o3-mini", [1.10, 0.55, 4.40], OPENAI, "2025-09"),
    row(OA, "o4-mini", [1.10, 0.275, 4.40], OPENAI, "2025-09"),
    row(OA, "text-embedding-3-small", [0.02, 0.02, 0.0], OPENAI, "2025-09"),
    row(OA, "text-embedding-3-large", [0.13, 0.13, 0.0], OPENAI, "2025-09"),
    row(OA, "text-embedding-ada-002", [0.10, 0.10, 0.0], OPENAI, "2025-09"),
    row(AN, "claude-sonnet-4", [3.00, 0.30, 15.00], ANTHROPIC, "2025-09"),
    // Opus 4 and 4.1 (the family also holds later Opus models, which list lower).
    row(AN, "claude-opus-4", [15.00, 1.50, 75.00], ANTHROPIC, "2025-09"),
    row(AN, "claude-haiku-4-5", [1.00, 0.10, 5.00], ANTHROPIC, "2025-10"),
    // Haiku 3.5, the dearer of the two models in this family (Haiku 3 lists 0.25 / 1.25).
    row(AN, "claude-haiku-3", [0.80, 0.08, 4.00], ANTHROPIC, "2025-09"),
    // Prompts up to 200k tokens; longer ones list higher.
    row(GE, "gemini-2.5-pro", [1.25, 0.31, 10.00], GEMINI, "2025-09"),
    row(GE, "gemini-2.5-flash", [0.30, 0.075, 2.50], GEMINI, "2025-09"),
    row(GE, "gemini-2.0-flash", [0.10, 0.025, 0.40], GEMINI, "2025-09"),
];
