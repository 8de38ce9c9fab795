//! Runtime of [`ratelimited`](https://docs.rs/ratelimited): the FIFO multi-dimension limiter,
//! limit families, dated tier tables and env configuration.
//!
//! Most users depend on the `ratelimited` facade and never name this crate; its layout is the
//! facade's. The root holds the limiter and the traits a user may implement; the topic modules
//! hold the rest: [`config`] (env variables, providers, model profiles), [`tiers`] (the built-in
//! limit tables), [`tokens`] (prompt token counts), [`http`] (classifying responses, retry
//! hints, rate-limit headers), [`testing`] and `integrations` (client crates, behind features).

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod breaker;
mod budget;
mod call;
mod call_error;
mod classify;
mod error;
mod family;
mod family_state;
mod feedback;
mod gcra;
mod limiter;
mod priority;
mod provider;
mod quota;
mod registry;
mod retry;
mod spend;
mod stats;
mod usage;

pub mod config;
pub mod cost;
pub mod events;
pub mod http;
#[cfg(any(feature = "reqwest", feature = "async-openai"))]
pub mod integrations;
#[cfg(feature = "planner")]
pub mod planner;
pub mod store;
pub mod stream;
pub mod testing;
pub mod tiers;
pub mod tokens;

#[doc(hidden)]
pub mod private;

pub use breaker::BreakerState;
pub use budget::{Budget, OutputBudget};
pub use call_error::CallError;
pub use classify::{Classify, Verdict};
pub use error::{Error, LastError};
pub use feedback::{
    ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION, OPENING_BURST_FRACTION,
    OPENING_MAX_WAIT,
};
pub use limiter::{Acquire, Limiter, Reservation, TryAcquireError};
pub use priority::{InvalidLaneShare, Priority, DEFAULT_LANE_SHARE};
pub use quota::{Cost, Dimension, Quota, Usage};
pub use registry::{ModelLimiter, Registry};
pub use spend::{Amount, BudgetLeft};
pub use stats::{stats, FamilyStats, RetryCounts, Stats};
pub use stream::RateLimitedStream;
pub use tokens::estimate::EstimateTokens;
pub use usage::{ReportUsage, WithHeaders};
