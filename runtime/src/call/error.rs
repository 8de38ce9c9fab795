//! A ready-made error type for a rate-limited function whose own error type is not the
//! caller's to extend.
//!
//! `#[rate_limited]` needs `From<ratelimited::Error>` and `Classify` on the function's error
//! type. For `std::io::Error`, `Box<dyn Error + Send + Sync>` or another crate's error the
//! orphan rule forbids writing those impls, so this type holds either the limiter's error or any
//! other one, and classifies the errors the library knows when it finds them inside.

use std::error::Error as StdError;
use std::fmt;

use crate::answers::classify::{Classify, Verdict};
use crate::answers::http::HttpError;
use crate::units::error::Error;

/// The limiter's own failure or the provider call's, for a function that has no error type of
/// its own.
///
/// `?` converts into it from [`Error`], [`HttpError`], [`std::io::Error`],
/// `Box<dyn Error + Send + Sync>`, `String` and `&str` (and `reqwest::Error` and async-openai's
/// `OpenAIError` with the `reqwest` and `async-openai` features); any other error goes in with
/// [`CallError::provider`], and [`CallError::downcast_ref`] gives it back. It is transparent: its
/// `Display` and `source` are those of the error it holds.
///
/// [`Classify`] gives the limiter's errors their usual verdict, and a provider error the
/// verdict of the library's impl for its type when it is one the library knows ([`HttpError`],
/// [`std::io::Error`], a boxed [`Error`], `reqwest::Error` and async-openai's `OpenAIError` with
/// their features); any other provider error is [`Verdict::Fatal`]: returned at once, never
/// retried. To retry your own errors, give them a type of your own that implements
/// [`Classify`], or wrap them in an [`HttpError`].
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::http::HttpError;
/// use ratelimited::{CallError, Classify, Verdict};
///
/// // With the facade: #[ratelimited::rate_limited(model = "gpt-4o-mini")]
/// async fn read_prompt(path: &str) -> Result<String, CallError> {
///     Ok(std::fs::read_to_string(path)?) // an `std::io::Error` converts with `?`
/// }
///
/// let reset = CallError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(reset.classify(), Verdict::Transient { retry_after: None });
///
/// let throttled = CallError::from(HttpError::new(429, [("retry-after", "2")], ""));
/// assert_eq!(throttled.classify().retry_after(), Some(std::time::Duration::from_secs(2)));
///
/// let unknown = CallError::provider(std::fmt::Error);
/// assert_eq!(unknown.classify(), Verdict::Fatal);
/// assert_eq!(unknown.to_string(), "an error occurred when formatting an argument");
/// # let _ = read_prompt;
/// ```
#[derive(Debug)]
pub enum CallError {
    /// The limiter refused or gave up (request too large, retries spent, configuration).
    Limiter(Error),
    /// The call itself failed.
    Provider(Box<dyn StdError + Send + Sync>),
}

impl CallError {
    /// Wraps any error of the provider call: `.map_err(CallError::provider)?`.
    pub fn provider(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        CallError::Provider(error.into())
    }

    /// The provider's error as `T`, if that is what the call failed with:
    /// `error.downcast_ref::<HttpError>().map(|e| e.status)`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        match self {
            CallError::Provider(error) => error.downcast_ref::<T>(),
            CallError::Limiter(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Limiter(error) => fmt::Display::fmt(error, f),
            CallError::Provider(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl StdError for CallError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CallError::Limiter(error) => error.source(),
            CallError::Provider(error) => error.source(),
        }
    }
}

impl Classify for CallError {
    fn classify(&self) -> Verdict {
        match self {
            CallError::Limiter(error) => error.classify(),
            CallError::Provider(error) => classify_known(&**error),
        }
    }
}

/// The verdict of the library's own impl for the error types it knows, else fatal: an
/// unknown error gives no sign that trying again could help.
fn classify_known(error: &(dyn StdError + Send + Sync + 'static)) -> Verdict {
    if let Some(error) = error.downcast_ref::<HttpError>() {
        return error.classify();
    }
    if let Some(error) = error.downcast_ref::<std::io::Error>() {
        return error.classify();
    }
    if let Some(error) = error.downcast_ref::<Error>() {
        return error.classify();
    }
    #[cfg(feature = "reqwest")]
    if let Some(error) = error.downcast_ref::<::reqwest::Error>() {
        return error.classify();
    }
    #[cfg(feature = "async-openai")]
    if let Some(error) = error.downcast_ref::<::async_openai::error::OpenAIError>() {
        return error.classify();
    }
    Verdict::Fatal
}

impl From<Error> for CallError {
    fn from(error: Error) -> Self {
        CallError::Limiter(error)
    }
}

impl From<Box<dyn StdError + Send + Sync>> for CallError {
    fn from(error: Box<dyn StdError + Send + Sync>) -> Self {
        CallError::Provider(error)
    }
}

/// The conversions `?` needs for the provider errors the library classifies, and for text.
macro_rules! from_provider_error {
    ($($(#[$attr:meta])* $error:ty),* $(,)?) => {$(
        $(#[$attr])*
        impl From<$error> for CallError {
            fn from(error: $error) -> Self {
                CallError::provider(error)
            }
        }
    )*};
}

from_provider_error!(
    HttpError,
    std::io::Error,
    String,
    &str,
    #[cfg(feature = "reqwest")]
    ::reqwest::Error,
    #[cfg(feature = "async-openai")]
    ::async_openai::error::OpenAIError,
);

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::*;

    #[test]
    fn limiter_errors_keep_their_verdict() {
        let too_large = Error::RequestTooLarge {
            dimension: crate::units::cost::Dimension::TokensPerMinute,
            requested: 50_000,
            capacity: 27_000,
        };
        let error = CallError::from(too_large.clone());
        assert_eq!(error.classify(), too_large.classify());
        assert!(matches!(error.classify(), Verdict::RequestTooLarge { .. }));
        assert_eq!(error.to_string(), too_large.to_string());
    }

    #[test]
    fn known_provider_errors_are_classified_through_the_box() {
        let io_error = CallError::from(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(
            io_error.classify(),
            Verdict::Transient { retry_after: None }
        );
        let not_found = CallError::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(not_found.classify(), Verdict::Fatal);

        let http = CallError::from(HttpError::new(429, [("retry-after-ms", "840")], ""));
        assert_eq!(
            http.classify().retry_after(),
            Some(Duration::from_millis(840))
        );

        let boxed: Box<dyn StdError + Send + Sync> = Box::new(Error::QuotaExhausted {
            message: "insufficient_quota".into(),
        });
        assert!(matches!(
            CallError::from(boxed).classify(),
            Verdict::QuotaExhausted { .. }
        ));
    }

    #[test]
    fn unknown_provider_errors_are_fatal_and_shown_as_they_are() {
        let error = CallError::from("the model refused");
        assert_eq!(error.classify(), Verdict::Fatal);
        assert_eq!(error.to_string(), "the model refused");
        assert!(error.source().is_none());
    }

    /// A provider error caused by another: what `CallError::source` must hand on.
    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn display_and_source_are_the_held_errors() {
        let error = CallError::provider(Wrapped(io::Error::from(io::ErrorKind::TimedOut)));
        assert_eq!(error.to_string(), "request failed");
        let source = error.source().expect("the held error's source");
        assert!(source.downcast_ref::<io::Error>().is_some());
        // Only the known types are looked for, not their causes.
        assert_eq!(error.classify(), Verdict::Fatal);
    }
}
