//! Support for the code `#[rate_limited]` generates. Not a public API: it may change in any
//! release. The facade re-exports it as `ratelimited::__private`.

pub use crate::call::{Attempt, Call, Next};
pub use crate::model::output::{MaxOutput, OutputBudget};
use crate::model::tokens::Encoding;
pub use crate::units::error::Error;
use crate::EstimateTokens;

/// Wraps a reference to an argument so method resolution can pick the estimating impl when
/// the argument's type has one, and the zero fallback otherwise (autoref specialization).
pub struct Arg<'a, T: ?Sized>(pub &'a T);

/// Picked when the argument's type implements [`EstimateTokens`].
pub trait ViaEstimate {
    /// The argument's prompt tokens.
    fn __rl_estimate(&self, encoding: Encoding) -> u64;
    /// The argument's text length in bytes.
    fn __rl_text_len(&self) -> usize;
}

impl<T: EstimateTokens + ?Sized> ViaEstimate for Arg<'_, T> {
    fn __rl_estimate(&self, encoding: Encoding) -> u64 {
        self.0.estimate_tokens(encoding)
    }
    fn __rl_text_len(&self) -> usize {
        self.0.text_len()
    }
}

/// Picked when it does not: the argument adds nothing to the estimate.
pub trait ViaNothing {
    /// Zero.
    fn __rl_estimate(&self, _encoding: Encoding) -> u64 {
        0
    }
    /// Zero.
    fn __rl_text_len(&self) -> usize {
        0
    }
}

impl<T: ?Sized> ViaNothing for &Arg<'_, T> {}

/// Picked when the argument's type implements [`OutputBudget`].
pub trait ViaBudget {
    /// The argument's output budget.
    fn __rl_budget(&self) -> Option<MaxOutput>;
}

impl<T: OutputBudget + ?Sized> ViaBudget for Arg<'_, T> {
    fn __rl_budget(&self) -> Option<MaxOutput> {
        Some(self.0.output_budget())
    }
}

/// Picked when it does not.
pub trait ViaNoBudget {
    /// `None`.
    fn __rl_budget(&self) -> Option<MaxOutput> {
        None
    }
}

impl<T: ?Sized> ViaNoBudget for &Arg<'_, T> {}

/// An error type that can carry the limiter's own failures.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a rate-limiter error",
    label = "`#[rate_limited]` returns limiter failures through this error type",
    note = "implement `From<ratelimited::Error>` for `{Self}` (request too large, retry-after \
            too long, retries spent and configuration errors come back through it)",
    note = "for an error type from another crate (`std::io::Error`, a client's error) the \
            orphan rule forbids that impl: return `ratelimited::CallError` instead, which holds the limiter's errors and any other \
            error, or wrap the error in a newtype of your own (`struct MyError(std::io::Error)`) \
            and implement `From<ratelimited::Error>` and `Classify` for that"
)]
pub trait FromLimiterError {
    /// Converts.
    fn from_limiter_error(error: Error) -> Self;
}

impl<E: From<Error>> FromLimiterError for E {
    fn from_limiter_error(error: Error) -> Self {
        E::from(error)
    }
}

/// Converts a limiter error into the function's error type.
pub fn into_error<E: FromLimiterError>(error: Error) -> E {
    E::from_limiter_error(error)
}

/// The return type of a rate-limited function.
#[diagnostic::on_unimplemented(
    message = "`#[rate_limited]` functions must return a `Result`, not `{Self}`",
    label = "the limiter reports its failures through the `Err` variant",
    note = "return `Result<T, E>` where `E: From<ratelimited::Error>`"
)]
pub trait Outcome {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<T, E> Outcome for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// An argument the call can run again with.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is passed by value to a function that may retry, so it must be `Clone`",
    label = "the body runs again on retry and needs this argument again",
    note = "take it by reference (`&{Self}`), implement `Clone`, or set `retries = 0`"
)]
pub trait RetryClone {}

impl<T: Clone> RetryClone for T {}

/// Checks (at compile time) that an owned argument can be cloned for a retry.
pub fn require_clone<T: RetryClone + ?Sized>(_: &T) {}

/// An integer count given to `tokens`, `max_tokens` or `n`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a token count",
    note = "pass an unsigned or signed integer (negative values count as 0)"
)]
pub trait TokenCount {
    /// The count as `u64`, saturating.
    fn to_count(self) -> u64;
}

macro_rules! token_count {
    ($($t:ty),*) => {$(
        impl TokenCount for $t {
            #[allow(clippy::cast_sign_loss, clippy::cast_lossless, irrefutable_let_patterns)]
            fn to_count(self) -> u64 {
                u64::try_from(self).unwrap_or(if self > 0 as $t { u64::MAX } else { 0 })
            }
        }
    )*};
}
token_count!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<T: TokenCount + Copy> TokenCount for &T {
    fn to_count(self) -> u64 {
        (*self).to_count()
    }
}

impl<T: TokenCount> TokenCount for Option<T> {
    fn to_count(self) -> u64 {
        self.map_or(0, TokenCount::to_count)
    }
}

/// `tokens = ...` / `max_tokens = ...` as a count.
pub fn token_count<N: TokenCount>(n: N) -> u64 {
    n.to_count()
}

/// `n = ...` as a count of choices.
pub fn choice_count<N: TokenCount>(n: N) -> u32 {
    u32::try_from(n.to_count()).unwrap_or(u32::MAX)
}

pub use crate::call::stream::RateLimitedStream;

/// The success type of a `#[rate_limited(.., stream)]` function: `RateLimitedStream<S>`, whose
/// body returns the bare `S`.
#[diagnostic::on_unimplemented(
    message = "a `#[rate_limited(.., stream)]` function must return \
               `Result<RateLimitedStream<S>, E>`, not `Result<{Self}, E>`",
    label = "the limiter wraps the body's stream to hold the reservation until the stream ends",
    note = "declare `-> Result<ratelimited::RateLimitedStream<S>, E>` and return `Ok(stream)` \
            (of type `S`) from the body",
    note = "for a function that returns a whole response, not a stream, remove `stream`"
)]
pub trait StreamReturn {
    /// The stream the body returns.
    type Stream;
}

impl<S> StreamReturn for RateLimitedStream<S> {
    type Stream = S;
}
