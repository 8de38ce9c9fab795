//! What the integration tests share: the examples' API error type (one definition for both),
//! and what a call left reserved.
#![allow(dead_code)] // each test file uses the part it needs

#[path = "../../examples/common/api_error.rs"]
mod api_error;

pub use api_error::ApiError;

/// Tokens in use on `gpt-4o-mini`'s tokens-per-minute bucket in the current registry.
pub fn reserved_tokens() -> u64 {
    ratelimited::Registry::current()
        .limiter("gpt-4o-mini")
        .expect("gpt-4o-mini has built-in limits")
        .limiter
        .in_use(ratelimited::limiter::Dimension::TokensPerMinute)
        .expect("gpt-4o-mini has a tokens-per-minute limit")
}
