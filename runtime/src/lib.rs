//! Runtime of [`ratelimited`](https://docs.rs/ratelimited): the FIFO multi-dimension limiter,
//! limit families, dated tier tables, env configuration and the call driver the attribute
//! expands to.
//!
//! Most users depend on the `ratelimited` facade and never name this crate: the facade picks
//! the paths users see (its layout is the hidden module `facade`), and the doc examples here,
//! rendered on the facade's pages, use those paths after the hidden line
//! `# use ratelimited_runtime::facade as ratelimited;`.
//!
//! Here the modules are layers, declared bottom up, and a module imports only from the modules
//! declared above it (`tests/layers.rs` checks it):
//!
//! | layer | holds |
//! |---|---|
//! | `sync` | locks that recover from poisoning |
//! | [`units`] | the vocabulary: dimensions, money, quotas and costs, the one error type |
//! | [`model`] | what is known of providers and models: tokens, providers, limit families, tier and price tables |
//! | [`answers`] | reading a provider's answers: classification, retry policy, usage, HTTP headers |
//! | [`config`] | the environment variables and the profile a model resolves to |
//! | [`limiter`] | the limiter: buckets, lanes, queue, reservations, and the trait a shared store implements |
//! | [`store`] | where a limiter's state lives: this process, or Redis (feature `redis`) |
//! | [`family`] | what a family keeps beside its limiter: breaker, spend, stats, events, header feedback |
//! | [`pool`] | deployment pools: each attempt routed to the deployment that admits it soonest, FIFO across them |
//! | [`registry`] | the limiters of a process by model, their policy, and which registry is current |
//! | [`call`] | one rate-limited call: acquire, attempt, settle, retry, streams |
//! | tools | [`testing`], `planner`, `integrations`, the attribute's hidden support, and the facade's layout |

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

// Bottom up. Each declaration stands alone: rustfmt sorts adjacent `mod` lines.
mod sync;

pub mod units;

pub mod model;

pub mod answers;

pub mod config;

pub mod limiter;

pub mod store;

pub mod family;

pub mod pool;

pub mod registry;

pub mod call;

// Tools, on top of everything.
pub mod testing;

#[cfg(feature = "planner")]
pub mod planner;

#[cfg(any(
    feature = "reqwest",
    feature = "async-openai",
    feature = "reqwest-middleware",
    feature = "tower"
))]
pub mod integrations;

#[doc(hidden)]
pub mod private;

#[doc(hidden)]
pub mod facade;

pub use answers::classify::{Classify, Verdict};
pub use answers::usage::{ReportUsage, WithHeaders};
pub use call::error::CallError;
pub use limiter::lanes::Priority;
pub use limiter::Limiter;
pub use model::output::OutputBudget;
pub use model::tokens::estimate::EstimateTokens;
pub use registry::Registry;
pub use units::cost::{Cost, Dimension, Usage};
pub use units::error::{Error, LastError};
pub use units::quota::Quota;
pub use units::tenant::Tenant;
