//! The one error type of the library.

use std::time::Duration;

use crate::quota::Dimension;

/// Everything the limiter itself can fail with.
///
/// A function annotated with `#[rate_limited]` returns these through its own error type, which
/// must implement `From<ratelimited::Error>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request alone is larger than one dimension's capacity: it could never be admitted,
    /// so it fails at once instead of waiting forever.
    #[error(
        "request too large: it needs {requested} {dimension} but the capacity is {capacity} \
         (limit times headroom); shorten the prompt, lower max_tokens, or raise the limit"
    )]
    RequestTooLarge {
        /// The dimension it does not fit in.
        dimension: Dimension,
        /// What the request asked for on that dimension.
        requested: u64,
        /// The dimension's capacity after headroom.
        capacity: u64,
    },

    /// A configuration value (env var or attribute argument) is malformed.
    #[error("invalid {variable}={value:?}: expected {expected}")]
    Config {
        /// The variable (or attribute argument) that holds the value.
        variable: String,
        /// The value as found.
        value: String,
        /// What is accepted.
        expected: String,
    },

    /// The model has no built-in limits and no env override defines them.
    #[error("no rate limits known for model `{model}` ({provider}, tier `{tier}`); set {hint}")]
    UnknownModel {
        /// The model id as given.
        model: String,
        /// The provider it was resolved to.
        provider: String,
        /// The tier in force.
        tier: String,
        /// The family id upper-cased for env vars (`GPT_4O_MINI`).
        family_env: String,
        /// Which variables would define it.
        hint: String,
    },

    /// The provider said the account is out of quota or credit (`insufficient_quota`, a spend
    /// cap, a per-day quota): retrying cannot help.
    #[error("quota exhausted: {message}")]
    QuotaExhausted {
        /// What the provider said.
        message: String,
    },

    /// The provider asked to wait longer than `RATE_LIMITED_MAX_RETRY_AFTER` allows.
    #[error(
        "the provider asked to retry after {retry_after:?}, more than the allowed {max:?} \
         (RATE_LIMITED_MAX_RETRY_AFTER)"
    )]
    RetryAfterTooLong {
        /// What the provider asked for.
        retry_after: Duration,
        /// The configured maximum.
        max: Duration,
    },

    /// Every retry was spent and the call still failed with a retryable error.
    #[error("gave up after {attempts} attempts: {last_error}")]
    RetriesExhausted {
        /// How many times the call ran.
        attempts: u32,
        /// The last error, as text.
        last_error: String,
    },

    /// The shared limit store (Redis) could not be reached and the policy is to fail closed.
    #[error("rate-limit backend unavailable: {message}")]
    BackendUnavailable {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(
        variable: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Error::Config {
            variable: variable.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}
