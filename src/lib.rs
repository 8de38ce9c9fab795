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

// The facade's layout is written in the runtime (`ratelimited_runtime::facade`), so that the
// runtime's doc examples, rendered here, compile there with the paths a user writes. The modules
// are named as well: through the glob alone, intra-doc links to them render as plain text.
#[doc(inline)]
#[cfg(feature = "redis")]
pub use ratelimited_runtime::facade::redis;
pub use ratelimited_runtime::facade::*;
#[doc(inline)]
pub use ratelimited_runtime::facade::{
    error, feedback, http, limiter, pool, registry, spend, stats,
};

/// Support for the code `#[rate_limited]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ratelimited_runtime::private::*;
}
