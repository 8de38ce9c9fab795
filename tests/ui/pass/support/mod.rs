//! Shared by the pass cases: an API error type that `#[rate_limited]` accepts, and a runtime
//! with a fresh registry whose limits the cases do not depend on the built-in tables for.

#![allow(dead_code)]

use std::future::Future;

#[derive(Debug)]
pub enum ApiError {
    Limiter(ratelimited::Error),
    Parse(std::num::ParseIntError),
    Other(String),
}

impl From<ratelimited::Error> for ApiError {
    fn from(error: ratelimited::Error) -> Self {
        ApiError::Limiter(error)
    }
}

impl From<std::num::ParseIntError> for ApiError {
    fn from(error: std::num::ParseIntError) -> Self {
        ApiError::Parse(error)
    }
}

impl ratelimited::Classify for ApiError {
    fn classify(&self) -> ratelimited::Verdict {
        ratelimited::Verdict::Fatal
    }
}

/// Runs `future` to completion on a current-thread runtime with a fresh registry, in which
/// `gpt-4o-mini` has generous limits and `test-model` (no built-in entry, so the cases that
/// use it say `provider = "openai"`) is defined by env overrides alone.
pub fn run<F: Future>(future: F) -> F::Output {
    let _registry = ratelimited::testing::fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "1000000"),
        ("RATE_LIMITED_TEST_MODEL_RPM", "600"),
        ("RATE_LIMITED_TEST_MODEL_TPM", "1000000"),
    ]);
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}
