//! Test support: an OpenAI-style mock provider on tokio's clock, and (feature `mock-server`)
//! the same mock over real HTTP.
//!
//! - [`MockProvider`]: in-process, enforces requests and tokens buckets exactly, answers 429s
//!   with OpenAI's body and headers, injects faults ([`Fault`]) and records every admission
//!   ([`Admission`], [`Rejection`], [`MockStats`]) so a test can assert the limit was never
//!   exceeded ([`MockLimits::check`]). Works under `#[tokio::test(start_paused = true)]`.
//! - `MockServer` (feature `mock-server`): the same provider as an OpenAI-compatible HTTP
//!   endpoint on `127.0.0.1`, in real time.
//!
//! # Why the mock provider is not behind a feature
//!
//! It is plain code over what the limiter already depends on (tokio's clock, `serde_json` for
//! the bodies, tiktoken-rs to count prompts), so it adds no dependency and costs a user's build
//! only the compilation of these few files. Only the HTTP server, which brings in axum and
//! tokio's networking, is gated.
//!
//! # Layout
//!
//! One concept per file, everything re-exported flat here: `limits` (the limits and the
//! referee's check), `records` (what the provider keeps), `request` and `response`, `fault`,
//! `bucket` (exact continuous refill), `provider` (the engine that decides each call),
//! `openai_wire` (how OpenAI writes requests, answers, headers and errors, shared by the
//! provider and the server), and `server`.

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod bucket;

mod records;

mod request;

mod response;

mod openai_wire;

mod fault;

mod limits;

mod ledger;

mod provider;

mod stream;

#[cfg(feature = "mock-server")]
mod other_wires;

#[cfg(feature = "mock-server")]
mod server;

pub use fault::Fault;
pub use ledger::PromptCache;
pub use limits::{LimitViolation, MockLimits};
pub use provider::MockProvider;
pub use records::{Admission, MockStats, Rejection, RejectionKind};
pub use request::MockRequest;
pub use response::MockResponse;
#[cfg(feature = "mock-server")]
pub use server::MockServer;
pub use stream::{MockStream, StreamPacing};

pub use bucket::MockWindow;
pub use ledger::MockHeaders;

pub use crate::registry::{fresh_registry, fresh_registry_with_env, spawn_scoped, ScopeGuard};
