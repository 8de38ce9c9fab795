//! Runtime of [`ratelimited`](https://docs.rs/ratelimited): the FIFO multi-dimension limiter,
//! limit families, dated tier tables and env configuration.
//!
//! Most users depend on the `ratelimited` facade and never name this crate.

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod error;
mod quota;

pub use error::Error;
pub use quota::{Cost, Dimension, Quota, Usage};

// -- config modules (family, tiers, config) --
pub mod config;
mod family;
pub mod tiers;

pub use config::{resolve, Resolved, Settings};
pub use family::{LimitFamily, Provider};
pub use tiers::{builtin_quota, TierEntry, TierSource};
// -- end config modules --

// -- estimation modules (tokens, usage, classify, headers) --
mod classify;
mod headers;
mod tokens;
mod usage;

pub use classify::{classify_http, retry_after_hint, Classify, HttpError, Verdict};
pub use headers::{parse_go_duration, parse_rfc3339, RateLimitHeaders};
pub use tokens::{
    count_chat, count_tokens, count_tokens_async, encoding_for_model, ChatMessage, Encoding,
    EstimateTokens, ASYNC_COUNT_THRESHOLD,
};
pub use usage::{ReportUsage, WithHeaders};
#[cfg(any(feature = "reqwest", feature = "async-openai"))]
pub mod integrations;
// -- end estimation modules --

// -- limiter modules --
mod call;
mod gcra;
mod limiter;
#[cfg(feature = "planner")]
pub mod planner;
#[doc(hidden)]
pub mod private;
mod registry;
pub mod testing;
pub use call::{Attempt, Budget, Call, Next, OutputBudget, DEFAULT_MAX_TOKENS, MAX_RETRY_TIME};
pub use limiter::{Acquire, Limiter, Reservation, TryAcquireError};
pub use registry::{fresh_registry, fresh_registry_with_env, ModelLimiter, Registry, ScopeGuard};
// -- end limiter modules --
