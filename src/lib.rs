//! Keep LLM API calls inside their provider's rate limits, at the function that makes them.
//!
//! `#[rate_limited(model = ...)]` on an async function that calls OpenAI, Azure OpenAI,
//! Anthropic, Gemini or any OpenAI-compatible endpoint makes every call, from anywhere in the
//! process:
//!
//! 1. estimate its prompt tokens from its arguments (tiktoken for OpenAI models) plus the
//!    output it may produce (`n × max_tokens`);
//! 2. wait, in arrival order, on the one limiter of the model's limit family: requests and
//!    tokens per minute, input and output tokens, per-day quotas, an in-flight cap, all
//!    reserved at once and refilled continuously;
//! 3. run, and on a 429 wait exactly as the server asks (`retry-after-ms`, `retry-after`, the
//!    "try again in 84ms" hint) while holding back every other caller of that family; errors
//!    that cannot succeed (`insufficient_quota`, "Request too large", a spend cap) fail at once;
//! 4. settle the reservation with the usage the response reports, refunding what was not used.
//!
//! Limits come from dated built-in tier tables, overridden by `RATE_LIMITED_*` environment
//! variables (see the README for the table). All waiting is on tokio's clock, so tests run in
//! paused virtual time.
//!
//! # The limiter on its own
//!
//! ```
//! use ratelimited::{Cost, Limiter, Quota, Usage};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ratelimited::Error> {
//! let limiter = Limiter::new(Quota::default().rpm(500).tpm(30_000));
//! let reservation = limiter.acquire(Cost::request(1_200, 256)).await?; // waits its turn
//! // ... send the request ...
//! reservation.settle(Usage::new(1_180, 97)); // unused output goes back
//! # Ok(())
//! # }
//! ```
//!
//! # In tests
//!
//! Give each test its own registry so no limiter state leaks between tests, and configure it
//! without touching the process environment:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let _registry = ratelimited::testing::fresh_registry_with_env([
//!     ("RATE_LIMITED_GPT_4O_MINI_RPM", "60"),
//!     ("RATE_LIMITED_GPT_4O_MINI_TPM", "10000"),
//! ]);
//! // every `#[rate_limited]` call on this thread now uses those limits
//! # }
//! ```

#![warn(missing_docs, rust_2018_idioms)]

#[doc(inline)]
pub use ratelimited_macros::rate_limited;

pub use ratelimited_runtime::{
    builtin_quota, classify_http, config, count_chat, count_tokens, count_tokens_async,
    encoding_for_model, parse_go_duration, parse_rfc3339, resolve, retry_after_hint, tiers,
    Acquire, Budget, ChatMessage, Classify, Cost, Dimension, Encoding, Error, EstimateTokens,
    HttpError, LimitFamily, Limiter, ModelLimiter, OutputBudget, Provider, Quota, RateLimitHeaders,
    Registry, ReportUsage, Reservation, Resolved, ScopeGuard, Settings, TierEntry, TierSource,
    TryAcquireError, Usage, Verdict, WithHeaders, ASYNC_COUNT_THRESHOLD, DEFAULT_MAX_TOKENS,
    MAX_RETRY_TIME,
};

/// Support for HTTP clients: classification of `reqwest` errors (feature `reqwest`), and token
/// estimates, output budgets, usage and error classification for `async-openai`'s types
/// (feature `async-openai`).
#[cfg(any(feature = "reqwest", feature = "async-openai"))]
pub use ratelimited_runtime::integrations;

/// Capacity planning in virtual time (feature `planner`): see the README's "Planning a run".
#[cfg(feature = "planner")]
pub use ratelimited_runtime::planner;

/// Helpers for testing code that uses the limiter: a fresh registry per test, and a mock
/// provider that enforces OpenAI-style limits on tokio's clock.
pub mod testing {
    pub use ratelimited_runtime::testing::*;
    pub use ratelimited_runtime::{fresh_registry, fresh_registry_with_env};
}

/// Support for the code `#[rate_limited]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ratelimited_runtime::private::*;
}
