//! Error classification: is a failed call worth retrying, and after how long?
//!
//! [`Classify`] maps an error type onto a [`Verdict`]; for HTTP responses the provider-specific
//! rules live in [`http::classify_http`](crate::answers::http::classify_http).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::units::error::{Error, LastError};

/// What a failed call means for retrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The provider's rate limit was hit (HTTP 429): wait and retry. `retry_after` is the wait
    /// the server asked for, when it said.
    RateLimited {
        /// The server's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Out of credit or quota (`insufficient_quota`, a spend cap, a per-day quota): retrying
    /// cannot help, so it never is.
    QuotaExhausted {
        /// What the provider said.
        message: String,
    },
    /// The request alone exceeds a limit ("Request too large", HTTP 413): it can never succeed.
    /// The provider's side of [`Error::RequestTooLarge`].
    RequestTooLarge {
        /// What the provider said.
        message: String,
    },
    /// A temporary failure (5xx, 529 overloaded, 408, 409, a reset connection): retry with
    /// backoff, without treating it as a rate-limit signal.
    Transient {
        /// The server's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Anything else (a bad request, bad credentials): returned to the caller at once.
    Fatal,
}

impl Verdict {
    /// True for [`Verdict::RateLimited`] and [`Verdict::Transient`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Verdict::RateLimited { .. } | Verdict::Transient { .. }
        )
    }

    /// The server's requested wait, for the retryable verdicts that carry one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Verdict::RateLimited { retry_after } | Verdict::Transient { retry_after } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// How an error type tells the limiter whether to retry.
///
/// Implemented for [`HttpError`](crate::answers::http::HttpError), [`std::io::Error`], the library's own [`Error`], [`Verdict`]
/// itself and references, boxes and `Arc`s of those. For your own error type, map it onto a
/// [`Verdict`]; when it wraps an HTTP response, [`classify_http`](crate::answers::http::classify_http) does the provider-specific
/// work:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::SystemTime;
/// use ratelimited::{http::classify_http, Classify, Verdict};
///
/// enum ApiError {
///     Http { status: u16, retry_after: Option<String>, body: String },
///     Decode(String),
/// }
///
/// impl Classify for ApiError {
///     fn classify(&self) -> Verdict {
///         match self {
///             ApiError::Http { status, retry_after, body } => {
///                 let header = |name: &str| match name {
///                     "retry-after" => retry_after.clone(),
///                     _ => None,
///                 };
///                 classify_http(*status, &header, body, SystemTime::now())
///             }
///             ApiError::Decode(_) => Verdict::Fatal,
///         }
///     }
/// }
///
/// let err = ApiError::Http { status: 429, retry_after: Some("2".into()), body: String::new() };
/// assert_eq!(err.classify(), Verdict::RateLimited { retry_after: Some(std::time::Duration::from_secs(2)) });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say whether it is a rate-limit error",
    label = "this error type cannot be classified for retrying",
    note = "implement `ratelimited::Classify` for it: map each error onto a `ratelimited::Verdict` \
            (`RateLimited` for 429s, `Transient` for 5xx, `Fatal` otherwise), or hand its HTTP \
            status, headers and body to `ratelimited::http::classify_http`",
    note = "for an error type from another crate (`Box<dyn Error + Send + Sync>`, a client's \
            error) the orphan rule forbids that impl: return `ratelimited::CallError` instead, \
            which classifies the errors it holds that the library knows (`HttpError`, \
            `std::io::Error`, client errors), or wrap the error in a newtype of your own \
            (`struct MyError(..)`) and implement `Classify` for that"
)]
pub trait Classify {
    /// What this error means for retrying the call.
    fn classify(&self) -> Verdict;

    /// A copy of this error to keep as the [`source`](std::error::Error::source) of
    /// [`Error::RetriesExhausted`] when the retry budget runs out, so callers can downcast it.
    /// `None` (the default) keeps only its `Debug` text.
    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        None
    }
}

impl Classify for Verdict {
    fn classify(&self) -> Verdict {
        self.clone()
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        (**self).to_error_source()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        (**self).to_error_source()
    }
}

impl<T: Classify + ?Sized> Classify for Arc<T> {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        (**self).to_error_source()
    }
}

/// The library's own errors, so a function whose error type is [`Error`] (or that nests another
/// rate-limited function) classifies without extra code.
impl Classify for Error {
    fn classify(&self) -> Verdict {
        match self {
            Error::RequestTooLarge { .. } => Verdict::RequestTooLarge {
                message: self.to_string(),
            },
            Error::QuotaExhausted { message } => Verdict::QuotaExhausted {
                message: message.clone(),
            },
            // The shared store may come back; the retry budget bounds the attempts.
            Error::BackendUnavailable { .. } => Verdict::Transient { retry_after: None },
            // Already the outcome of a retry decision, or a configuration mistake.
            Error::RetryAfterTooLong { .. }
            | Error::RetriesExhausted { .. }
            | Error::Config { .. }
            | Error::UnknownModel { .. }
            | Error::UnknownProvider { .. }
            | Error::CircuitOpen { .. }
            | Error::BudgetExhausted { .. }
            | Error::PoolRefused { .. } => Verdict::Fatal,
            #[allow(unreachable_patterns)]
            _ => Verdict::Fatal,
        }
    }

    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        Some(Box::new(self.clone()))
    }
}

/// Connection-level failures (reset, aborted, refused, timed out, broken pipe, early EOF) are
/// transient; every other I/O error is fatal.
impl Classify for std::io::Error {
    fn classify(&self) -> Verdict {
        use std::io::ErrorKind::*;
        match self.kind() {
            ConnectionReset | ConnectionAborted | ConnectionRefused | NotConnected | BrokenPipe
            | TimedOut | UnexpectedEof | Interrupted | WouldBlock => {
                Verdict::Transient { retry_after: None }
            }
            _ => Verdict::Fatal,
        }
    }

    /// A new error of the same kind and message (`std::io::Error` is not `Clone`).
    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        Some(Box::new(std::io::Error::new(self.kind(), self.to_string())))
    }
}

impl LastError {
    /// Keeps `error`'s `Debug` text, and the error itself when its type hands out a copy
    /// ([`Classify::to_error_source`]).
    pub fn from_error<E: Classify + fmt::Debug + ?Sized>(error: &E) -> Self {
        LastError::new(format!("{error:?}"), error.to_error_source())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_classify() {
        use crate::units::cost::Dimension;
        let too_large = Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 40_000,
            capacity: 27_000,
        };
        assert!(matches!(
            too_large.classify(),
            Verdict::RequestTooLarge { .. }
        ));
        let quota = Error::QuotaExhausted {
            message: "out of credit".into(),
        };
        assert_eq!(
            quota.classify(),
            Verdict::QuotaExhausted {
                message: "out of credit".into()
            }
        );
        let spent = Error::RetriesExhausted {
            attempts: 7,
            last_error: crate::units::error::LastError::from_text("429"),
        };
        assert_eq!(spent.classify(), Verdict::Fatal);
        assert!(Error::BackendUnavailable {
            message: "redis down".into()
        }
        .classify()
        .is_retryable());
        // Through references and boxes.
        fn through<C: Classify>(error: C) -> Verdict {
            error.classify()
        }
        let boxed: Box<Error> = Box::new(quota.clone());
        assert_eq!(through(&boxed), quota.classify());
        assert_eq!(through(Arc::new(boxed)), quota.classify());
    }

    #[test]
    fn io_errors_classify() {
        use std::io::{Error as IoError, ErrorKind};
        assert!(IoError::from(ErrorKind::ConnectionReset)
            .classify()
            .is_retryable());
        assert!(IoError::from(ErrorKind::TimedOut).classify().is_retryable());
        assert_eq!(
            IoError::from(ErrorKind::PermissionDenied).classify(),
            Verdict::Fatal
        );
    }

    #[test]
    fn kept_sources_can_be_downcast() {
        use std::io::{Error as IoError, ErrorKind};
        let io = IoError::new(ErrorKind::ConnectionReset, "reset by peer");
        let last = crate::units::error::LastError::from_error(&io);
        let kept = last.downcast_ref::<IoError>().unwrap();
        assert_eq!(
            (kept.kind(), kept.to_string()),
            (ErrorKind::ConnectionReset, "reset by peer".into())
        );
        let spent = Error::RetriesExhausted {
            attempts: 2,
            last_error: last,
        };
        let chain = std::error::Error::source(&spent).and_then(std::error::Error::source);
        assert!(chain.is_some_and(|e| e.downcast_ref::<IoError>().is_some()));
        // A type that keeps nothing still leaves its text.
        let verdict = Verdict::Fatal;
        let last = crate::units::error::LastError::from_error(&verdict);
        assert_eq!((last.text(), last.error().is_none()), ("Fatal", true));
    }
}
