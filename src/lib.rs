//! Keep LLM API calls inside their provider's rate limits, at the function that makes them.
//!
//! ```
//! use ratelimited::{rate_limited, CallError};
//! use serde_json::{json, Value};
//!
//! #[rate_limited(model = "gpt-4o-mini")] // tier from RATE_LIMITED_TIER, default tier-1
//! async fn summarize(text: &str) -> Result<Value, CallError> {
//!     // Send the request here (with reqwest: the README's "Your first function"); the
//!     // answer's `usage` settles what the call reserved.
//!     # let _ = text;
//!     Ok(json!({ "usage": { "prompt_tokens": 12, "completion_tokens": 30 } }))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), CallError> {
//! # let _registry = ratelimited::testing::fresh_registry();
//! let answer = summarize("a long text").await?; // waits its turn, retries 429s
//! # assert_eq!(answer["usage"]["completion_tokens"], 30);
//! # Ok(())
//! # }
//! ```
//!
//! ```toml
//! [dependencies]
//! ratelimited = { version = "0.1", features = ["reqwest"] }
//! ```
//!
//! | feature | what it adds |
//! |---|---|
//! | `reqwest` | [`Classify`] for `reqwest::Error` (reqwest 0.13), `CallError: From<reqwest::Error>`, `integrations::reqwest::error_for_status` |
//! | `async-openai` | estimates, output budgets, usage and [`Classify`] for async-openai 0.43's chat and embedding types |
//! | `redis` | limits shared by every process pointed at one Redis (`RATE_LIMITED_REDIS_URL`, `redis`) |
//! | `mock-server` | `testing::MockServer`: the mock provider over real HTTP on loopback |
//! | `planner` | `planner`: capacity plans in virtual time (turns on tokio's `test-util`) |
//!
//! The function returns `Result<T, E>` with `E: From<Error> + Classify + Debug` (the ready-made
//! [`CallError`] is one) and `T: ReportUsage` (`serde_json::Value` with a `usage` object is
//! one). Every argument counts as prompt text unless skipped (`skip(url)`). The attribute's page,
//! [`rate_limited`], says what the function must look like and what each key does.
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
//! - At the root: the attribute and what a function under it deals with: the one [`Error`]
//!   type (or the ready-made [`CallError`]), the traits you may implement for your own types,
//!   [`EstimateTokens`] (argument → prompt tokens), [`OutputBudget`] (request → [`MaxOutput`]),
//!   [`ReportUsage`] (response → [`Usage`]) and [`Classify`] (error → [`Verdict`]: retry or
//!   not); the lane a call waits in ([`Priority`]); the [`Limiter`] with its [`Quota`], and the
//!   [`Registry`] of limiters.
//! - [`limiter`]: the limiter on its own: costs, reservations, lanes, and the trait a shared
//!   store implements. [`registry`]: the limiters of a process, and which registry is current.
//! - [`config`]: the environment variables, providers and limit families, and the profile a
//!   model resolves to. [`tiers`]: the dated built-in limit tables. [`prices`]: the dated
//!   price table.
//! - [`tokens`]: counting prompt tokens (tiktoken encodings, chat overhead).
//! - [`http`]: classifying failed HTTP responses, `Retry-After` hints, rate-limit headers.
//! - [`stream`]: streamed responses that hold their reservation until they end.
//! - Long runs: [`stats`] (a snapshot of every family), [`spend`] (budgets in tokens and
//!   dollars), [`events`] (the `tracing` targets), [`feedback`] (what a family learns from its
//!   server's headers), [`error`] (the error types and the last error a retry kept).
//! - [`testing`]: a registry per test and a mock provider on tokio's clock.
//! - `integrations` (features `reqwest`, `async-openai`), `redis` (feature `redis`), `planner`
//!   (feature `planner`).
//!
//! # The limiter on its own
//!
//! ```
//! use ratelimited::{limiter::Cost, Limiter, Quota, Usage};
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

/// What [`OutputBudget`] reports and [`ReportUsage`] returns.
pub use ratelimited_runtime::{model::output::MaxOutput, units::cost::Usage};
pub use ratelimited_runtime::{
    CallError, Classify, Error, EstimateTokens, Limiter, OutputBudget, Priority, Quota, Registry,
    ReportUsage, Verdict,
};

/// The rest of the limiter (the [`Limiter`], its [`Quota`] and [`Priority`] lanes are at the
/// root): what one request costs, the
/// reservation it holds, and the trait a backend implements to share the state between
/// processes.
pub mod limiter {
    pub use ratelimited_runtime::limiter::acquire::SharedAcquire;
    pub use ratelimited_runtime::limiter::{
        Acquire, InvalidLaneShare, Reservation, SharedHold, SharedStore, TryAcquireError,
        DEFAULT_LANE_SHARE,
    };
    pub use ratelimited_runtime::units::cost::{Cost, Dimension};
}

/// What a [`Registry`] hands out: a model's limiter with its profile (the guard of a scoped
/// registry is [`testing::ScopeGuard`]).
pub mod registry {
    pub use ratelimited_runtime::registry::ModelLimiter;
}

/// The last error a spent retry budget kept (the error types themselves, [`Error`] and
/// [`CallError`], are at the root).
pub mod error {
    pub use ratelimited_runtime::units::error::LastError;
}

/// What a long run has done so far, per limit family: [`snapshot`](crate::stats::snapshot) reads the
/// current registry's.
pub mod stats {
    pub use ratelimited_runtime::family::breaker::BreakerState;
    pub use ratelimited_runtime::family::stats::{FamilyStats, RetryCounts, Stats};
    pub use ratelimited_runtime::registry::stats_snapshot as snapshot;
}

/// Spend limits: how many tokens and dollars a family, or the whole process, may still use.
pub mod spend {
    pub use ratelimited_runtime::family::spend::BudgetLeft;
    pub use ratelimited_runtime::units::money::{Amount, SpendLimit};
}

/// What a family learns from its server's answers: the opening burst before the first one and
/// the correction of the prompt estimate.
pub mod feedback {
    pub use ratelimited_runtime::family::feedback::{
        ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION, OPENING_BURST_FRACTION,
        OPENING_MAX_WAIT,
    };
}

/// Classifying failed HTTP responses, `Retry-After` hints, rate-limit headers, and a value
/// that carries its response's headers.
pub mod http {
    pub use ratelimited_runtime::answers::http::*;
    pub use ratelimited_runtime::answers::usage::WithHeaders;
}

#[doc(inline)]
pub use ratelimited_runtime::call::stream;
#[doc(inline)]
pub use ratelimited_runtime::config;
#[doc(inline)]
pub use ratelimited_runtime::family::events;
#[doc(inline)]
pub use ratelimited_runtime::model::{prices, tiers, tokens};
#[doc(inline)]
pub use ratelimited_runtime::testing;

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
        DEFAULT_REDIS_TIMEOUT, REDIS_CLUSTER_VAR, REDIS_FALLBACK_SHARE_VAR, REDIS_LEASE_MS_VAR,
        REDIS_ON_FAILURE_VAR, REDIS_PREFIX_VAR, REDIS_TIMEOUT_MS_VAR,
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
