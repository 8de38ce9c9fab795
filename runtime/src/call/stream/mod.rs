//! Streamed responses: [`RateLimitedStream`] holds the call's reservation, and its in-flight
//! slot, until the stream ends or is dropped, and settles it from the usage the chunks report.
//!
//! ```text
//! #[rate_limited(model = "gpt-4o-mini", stream)]
//! async fn chat(..) -> Result<RateLimitedStream<MyStream>, MyError> {
//!     let response = send(..).await?;   // an error here (429, 5xx) is retried as usual
//!     Ok(MyStream::new(response))       // the body returns the bare stream
//! }
//! ```
//!
//! How a stream ends decides what the reservation keeps:
//!
//! | ending | limiter and budgets | slot and stats |
//! |---|---|---|
//! | the stream ends (`None`) after a chunk reported usage | settled to the last reported usage, as a non-streaming call with that usage (tokens, dollars, stats) | released at the end |
//! | the stream ends without any usage | the whole reservation is kept (logged at `debug`) | released at the end |
//! | dropped before its end | the whole reservation is kept: the provider has counted it | released at once |
//!
//! The family's circuit breaker hears of the answer when the stream is handed over (the
//! server answered): a stream is a success for the breaker however long it runs.
//!
//! An `Err` item in the middle of a stream goes to the caller as it is: the output before it
//! is already out, so the call is not run again, and it is not a transient failure of the
//! family either (the provider accepted the request). Whatever usage came before it still
//! counts when the stream ends.
//!
//! A body that returns its stream in [`WithHeaders`] (the function declaring
//! `RateLimitedStream<WithHeaders<S>>`) has the response's rate-limit headers applied when the
//! stream starts, as a whole response's are when it arrives.

mod usage;

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use super::attempt::Attempt;
use crate::answers::usage::WithHeaders;
use crate::units::cost::Usage;

use usage::UsageSoFar;
pub use usage::{IncludeStreamUsage, StreamUsage, StreamUsageUpdate};

/// An item of a rate-limited stream: `Result<Chunk, E>` with a chunk that reports usage.
#[diagnostic::on_unimplemented(
    message = "the items of a `#[rate_limited(.., stream)]` stream must be `Result<Chunk, E>`, \
               not `{Self}`",
    label = "the limiter reads each `Ok` chunk's usage and passes `Err` items to the caller",
    note = "map the stream's items into `Result<Chunk, E>` where `Chunk: \
            ratelimited::stream::StreamUsage` (`serde_json::Value` for SSE `data:` lines)"
)]
pub trait StreamItem {
    /// The usage the item reports: its chunk's, or none for an error.
    fn usage(&self) -> Option<StreamUsageUpdate>;
}

impl<C: StreamUsage, E> StreamItem for Result<C, E> {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        self.as_ref().ok().and_then(StreamUsage::usage)
    }
}

/// A stream with the rate-limit headers of the response it reads: what a
/// `#[rate_limited(.., stream)]` body returns to have those headers applied when the stream
/// starts (declare `RateLimitedStream<WithHeaders<S>>`). It yields the stream's items; the
/// stream must be `Unpin` (`Box::pin` one that is not).
impl<S: Stream + Unpin> Stream for WithHeaders<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.body.size_hint()
    }
}

/// A streamed response that holds its call's reservation until it ends or is dropped.
///
/// Returned by a `#[rate_limited(model = .., stream)]` function, or a
/// `#[rate_limited(pool = .., deployment = .., stream)]` one, whose reservation is held on the
/// deployment its attempt was admitted on (see the [module](self) for what each ending keeps). It yields the wrapped stream's items unchanged and is `Unpin`
/// whatever the wrapped stream is.
#[must_use = "the call's in-flight slot is held until the stream ends or is dropped"]
pub struct RateLimitedStream<S> {
    inner: Pin<Box<S>>,
    /// The call's attempt: `None` once the stream has ended and settled.
    open: Option<Attempt>,
    usage: UsageSoFar,
}

impl<S> RateLimitedStream<S> {
    pub(crate) fn new(stream: S, attempt: Attempt) -> Self {
        RateLimitedStream {
            inner: Box::pin(stream),
            open: Some(attempt),
            usage: UsageSoFar::default(),
        }
    }

    /// The usage the chunks have reported so far (the last value of each count), if any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }

    /// Whether the reservation is still held: `false` once the stream has ended.
    pub fn is_holding(&self) -> bool {
        self.open.is_some()
    }

    fn settle_at_end(&mut self) {
        let Some(attempt) = self.open.take() else {
            return;
        };
        let usage = self.usage.usage();
        if usage.is_none() {
            tracing::debug!(
                family = %attempt.profile().family,
                cost = ?attempt.reserved(),
                "the stream ended without reporting usage; the whole reservation is kept \
                 (for OpenAI and Azure, send `stream_options.include_usage`)"
            );
        }
        // A stream's headers came with its first response: nothing to read at its end.
        let _ = attempt.succeeded(usage);
    }
}

impl<S> Stream for RateLimitedStream<S>
where
    S: Stream,
    S::Item: StreamItem,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        // `inner` is boxed, so `Self` is `Unpin` and its fields can be borrowed freely.
        let this = self.get_mut();
        let item = ready!(this.inner.as_mut().poll_next(cx));
        match &item {
            Some(item) => {
                if let Some(update) = item.usage() {
                    this.usage.record(update);
                }
            }
            None => this.settle_at_end(),
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S> Drop for RateLimitedStream<S> {
    fn drop(&mut self) {
        if let Some(attempt) = &self.open {
            // The attempt's own drop keeps the charge (it was sent) and frees the slot.
            tracing::debug!(
                family = %attempt.profile().family,
                "stream dropped before its end; its whole reservation is kept"
            );
        }
    }
}

impl<S> fmt::Debug for RateLimitedStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitedStream")
            .field("holding", &self.open)
            .field("usage", &self.usage.usage())
            .finish_non_exhaustive()
    }
}
