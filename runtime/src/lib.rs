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
// -- end config modules --

// -- estimation modules (tokens, usage, classify, headers) --
// -- end estimation modules --

// -- limiter modules --
mod gcra;
mod limiter;
pub use limiter::{Acquire, Limiter, Reservation, TryAcquireError};
// -- end limiter modules --
