//! The one error type of the library, and the last error a spent retry budget keeps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::units::cost::Dimension;
use crate::units::money::Amount;

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

    /// No provider was given for the model and its name does not say which it is.
    #[error(
        "say which provider serves model `{model}`: add `provider = \"openai\"` to \
         `#[rate_limited(..)]` for an OpenAI-compatible endpoint (or \"azure\", \"anthropic\", \
         \"gemini\"), or prefix the model id (`openai/{model}`); as model names, {recognized}"
    )]
    UnknownProvider {
        /// The model id as given.
        model: String,
        /// Which model names the provider is inferred from.
        recognized: String,
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
    ///
    /// The last error is its [`source`](std::error::Error::source): see [`LastError`] to reach
    /// the provider's own error.
    #[error("gave up after {attempts} attempts: {last_error}")]
    RetriesExhausted {
        /// How many times the call ran.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        last_error: LastError,
    },

    /// The shared limit store (Redis) could not be reached and the policy is to fail closed.
    #[error("rate-limit backend unavailable: {message}")]
    BackendUnavailable {
        /// What went wrong.
        message: String,
    },

    /// The family's circuit breaker is open after repeated transient failures (5xx, 529,
    /// timeouts): the call failed at once and nothing was sent. See the README's "Long runs".
    #[error(
        "circuit open for {family}: its provider kept failing (5xx, 529 or timeouts), so \
         nothing was sent{}",
        match retry_in {
            Some(wait) => format!("; a probe call may go in {:.1} s", wait.as_secs_f64()),
            None => "; a probe call is deciding whether it closes".to_owned(),
        }
    )]
    CircuitOpen {
        /// The limit family (`openai/gpt-4o`).
        family: String,
        /// How long until the breaker lets one probe call through; `None` while a probe is
        /// already in flight.
        retry_in: Option<Duration>,
    },

    /// The call could use more than a budget has left, so it failed before anything was sent.
    #[error(
        "budget exhausted: {budget} has {remaining} left and this call may use {requested} \
         (its prompt estimate plus n × max_tokens)"
    )]
    BudgetExhausted {
        /// Which budget: `the process-wide token budget (RATE_LIMITED_BUDGET_TOKENS)`, ...
        budget: String,
        /// What the budget has left, reservations of calls in flight taken off.
        remaining: Amount,
        /// What this call reserves.
        requested: Amount,
    },

    /// Every deployment of a pool refused the call at once: each is named with its reason (its
    /// breaker is open, it is out of quota and skipped for a cool-down, the call is larger than
    /// its capacity, a budget is spent). Nothing was sent.
    #[error(
        "no deployment of pool `{pool}` can take this call: {}",
        Refusal::list(refusals)
    )]
    PoolRefused {
        /// The pool's name.
        pool: String,
        /// Each deployment, in the pool's order, with why it refused.
        refusals: Vec<Refusal>,
    },
}

/// Why one deployment of a pool refused a call: part of [`Error::PoolRefused`].
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The deployment's name.
    pub deployment: String,
    /// The error that deployment alone would have given.
    pub reason: Error,
}

impl Refusal {
    fn list(refusals: &[Refusal]) -> String {
        refusals
            .iter()
            .map(|r| format!("{}: {}", r.deployment, r.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
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

/// The error of a call's last attempt, kept by [`Error::RetriesExhausted`].
///
/// Its text is the error's `Debug` form. When the error type hands out a copy of itself
/// ([`Classify::to_error_source`](crate::Classify::to_error_source), implemented for
/// [`HttpError`](crate::answers::http::HttpError), [`std::io::Error`] and [`Error`]), that copy is the
/// [`source`](std::error::Error::source) of this one, so it can be downcast:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{error::LastError, http::HttpError, Error};
///
/// let http = HttpError::new(429, [("retry-after", "1")], "slow down");
/// let spent = Error::RetriesExhausted { attempts: 3, last_error: LastError::from_error(&http) };
/// let Error::RetriesExhausted { last_error, .. } = &spent else { unreachable!() };
/// assert_eq!(last_error.downcast_ref::<HttpError>().map(|e| e.status), Some(429));
/// ```
#[derive(Clone)]
pub struct LastError {
    text: String,
    error: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl LastError {
    /// `text` (an error's `Debug` form) and, when its type could hand out a copy, the error
    /// itself. [`LastError::from_error`] builds one from any [`Classify`](crate::Classify) error.
    pub fn new(
        text: impl Into<String>,
        error: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        LastError {
            text: text.into(),
            error: error.map(Arc::from),
        }
    }

    /// Only the text, for errors that cannot be kept.
    pub fn from_text(text: impl Into<String>) -> Self {
        LastError {
            text: text.into(),
            error: None,
        }
    }

    /// The `Debug` text of the error.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The error itself, when its type could hand out a copy.
    pub fn error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.error.as_deref()
    }

    /// The error as `T`, if that is its type.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.error()?.downcast_ref::<T>()
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Two last errors are equal when their texts are: the kept copies have no equality of their
/// own.
impl PartialEq for LastError {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::error::Error for LastError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
