//! What an HTTP response says about rate limits: classifying a failed one ([`classify_http`],
//! [`HttpError`]), the wait a server asks for ([`retry_after_hint`]), and the `x-ratelimit-*` /
//! `anthropic-ratelimit-*` feedback headers ([`RateLimitHeaders`]).
//!
//! Every time in here is relative to a `now` the caller passes in: nothing reads the wall clock
//! unless asked to ([`HttpError`]'s [`Classify`](crate::Classify) impl), so tests are exact.

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod headers;

mod body;

mod retry_after;

mod classify;

pub use classify::{classify_http, HttpError};
pub use headers::{parse_go_duration, RateLimitHeaders};
pub use retry_after::retry_after_hint;
