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
//! # Where things are
//!
//! - At the root: the attribute, the [`Limiter`] it waits on ([`Quota`], [`Cost`],
//!   [`Reservation`], [`Usage`]), the [`Registry`] of limiters, the one [`Error`] type, and the
//!   traits you may implement for your own types: [`EstimateTokens`] (argument → prompt
//!   tokens), [`OutputBudget`] (request → `max_tokens` × `n`), [`ReportUsage`] (response →
//!   real usage) and [`Classify`] (error → [`Verdict`]: retry or not).
//! - [`config`]: the environment variables, providers and limit families, and the profile a
//!   model resolves to. [`tiers`]: the dated built-in limit tables.
//! - [`tokens`]: counting prompt tokens (tiktoken encodings, chat overhead).
//! - [`http`]: classifying failed HTTP responses, `Retry-After` hints, rate-limit headers.
//! - [`testing`]: a registry per test and a mock provider on tokio's clock.
//! - `integrations` (features `reqwest`, `async-openai`): ready impls for client crates.
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
//! // every `#[rate_limited]` call on this thread now uses those limits, and so does every
//! // task spawned with `ratelimited::testing::spawn_scoped`
//! # }
//! ```
//!
//! On a multi-thread runtime, bind the test's future instead, so its tasks see the registry on
//! every worker thread: `Registry::with_env([..]).bind(async { .. }).await`.

#![warn(missing_docs, rust_2018_idioms)]

#[doc(inline)]
pub use ratelimited_macros::rate_limited;

pub use ratelimited_runtime::CallError;
pub use ratelimited_runtime::RateLimitedStream;
pub use ratelimited_runtime::{
    stats, Amount, BreakerState, BudgetLeft, FamilyStats, RetryCounts, Stats,
};
pub use ratelimited_runtime::{
    Acquire, Budget, Classify, Cost, Dimension, Error, EstimateTokens, LastError, Limiter,
    ModelLimiter, OutputBudget, Quota, Registry, ReportUsage, Reservation, TryAcquireError, Usage,
    Verdict, WithHeaders,
};
pub use ratelimited_runtime::{InvalidLaneShare, Priority, DEFAULT_LANE_SHARE};

#[doc(inline)]
pub use ratelimited_runtime::{config, cost, events, http, stream, testing, tiers, tokens};

#[doc(inline)]
#[cfg(any(feature = "reqwest", feature = "async-openai"))]
pub use ratelimited_runtime::integrations;

/// Limits shared by every process and machine pointed at one Redis (feature `redis`): set
/// `RATE_LIMITED_REDIS_URL`, or build a registry with [`RedisConfig`](redis::RedisConfig).
/// See the README's "Sharing limits across processes and machines".
#[cfg(feature = "redis")]
pub mod redis {
    pub use ratelimited_runtime::store::{
        OnFailure, RedisConfig, DEFAULT_FALLBACK_SHARE, DEFAULT_LEASE, DEFAULT_REDIS_PREFIX,
        DEFAULT_REDIS_TIMEOUT, REDIS_FALLBACK_SHARE_VAR, REDIS_LEASE_MS_VAR, REDIS_ON_FAILURE_VAR,
        REDIS_PREFIX_VAR, REDIS_TIMEOUT_MS_VAR,
    };
}

#[cfg(feature = "planner")]
#[doc(inline)]
pub use ratelimited_runtime::planner;

/// Support for the code `#[rate_limited]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ratelimited_runtime::private::*;
}
