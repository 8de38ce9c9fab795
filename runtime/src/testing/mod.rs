//! Test support: an OpenAI-style mock provider on tokio's clock, and (feature `mock-server`)
//! the same mock over real HTTP.
//!
//! - [`MockProvider`]: in-process, enforces requests and tokens buckets exactly, answers 429s
//!   with OpenAI's body and headers, injects faults ([`Fault`]) and records every admission so a
//!   test can assert the limit was never exceeded. Works under
//!   `#[tokio::test(start_paused = true)]`.
//! - `MockServer` (feature `mock-server`): the same provider as an OpenAI-compatible HTTP
//!   endpoint on `127.0.0.1`, in real time.

pub mod mock;
#[cfg(feature = "mock-server")]
pub mod server;

pub use mock::{
    Admission, Fault, LimitViolation, MockLimits, MockProvider, MockRequest, MockResponse,
    MockStats, Rejection, RejectionKind,
};
#[cfg(feature = "mock-server")]
pub use server::MockServer;

// -- registry isolation (lead) --
pub use crate::registry::{fresh_registry, fresh_registry_with_env, spawn_scoped, ScopeGuard};
