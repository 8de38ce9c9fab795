//! Reading what a provider answered: whether an error may be retried and how long to wait,
//! the usage a response reports, and the HTTP details (statuses, retry hints, rate-limit
//! headers).

// Bottom up; rustfmt would sort adjacent `mod` lines.
pub mod classify;

pub mod retry;

pub mod http;

pub mod usage;
