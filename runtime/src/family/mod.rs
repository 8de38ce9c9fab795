//! What one limit family keeps beside its limiter for long runs: the circuit breaker, the spend
//! ledgers, the running stats and events, what it learns from its server's headers, and the
//! state that ties them to a call's guards.

// Bottom up; rustfmt would sort adjacent `mod` lines.
pub mod breaker;

pub mod spend;

pub mod tenants;

pub mod stats;

pub mod events;

#[cfg(feature = "metrics")]
pub(crate) mod metrics;

pub mod feedback;

pub mod state;
