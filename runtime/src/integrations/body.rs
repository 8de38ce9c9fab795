//! The response body the HTTP-stack integrations hand back: [`LimitedBody`], a whole body
//! already read (its usage settled), the untouched body of a request that was not limited, or
//! a streamed (SSE) body that holds its reservation until it ends and settles from the usage
//! its events report, as [`RateLimitedStream`] does.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;

use crate::call::stream::{RateLimitedStream, StreamUsage, StreamUsageUpdate};

/// The error type of a [`LimitedBody`]: the inner body's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that is not buffered any further than one event: a stream's longest event that is
/// still read for usage. A longer one (no provider sends such) passes through unread.
const MAX_EVENT: usize = 1 << 20;

/// The body of a response that went through the limiter.
///
/// - a whole JSON answer (or an error answer) is read to settle the reservation, then given
///   back from memory, byte for byte;
/// - a `text/event-stream` answer streams through untouched while its `data:` events are read
///   for usage; the reservation (and the family's in-flight slot) is held until the body ends,
///   then settled from the last usage reported (dropped before its end: the whole reservation
///   is kept, as the provider has counted it);
/// - a request that was not limited keeps its body as it came.
pub struct LimitedBody<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Whole(Option<Bytes>),
    Passthrough(Pin<Box<B>>),
    Streaming(Box<RateLimitedStream<SseFrames<B>>>),
    Failed(Option<BoxError>),
}

impl<B> LimitedBody<B> {
    pub(crate) fn whole(bytes: Bytes) -> Self {
        LimitedBody {
            kind: Kind::Whole(Some(bytes).filter(|b| !b.is_empty())),
        }
    }

    pub(crate) fn passthrough(body: B) -> Self {
        LimitedBody {
            kind: Kind::Passthrough(Box::pin(body)),
        }
    }

    pub(crate) fn streaming(stream: RateLimitedStream<SseFrames<B>>) -> Self {
        LimitedBody {
            kind: Kind::Streaming(Box::new(stream)),
        }
    }

    /// A body whose first read fails with `error` (the original body failed while the limiter
    /// read it, and the failure is not retried).
    pub(crate) fn failed(error: BoxError) -> Self {
        LimitedBody {
            kind: Kind::Failed(Some(error)),
        }
    }

    /// Whether a streamed body still holds its reservation (`false` for any other body).
    pub fn is_holding(&self) -> bool {
        matches!(&self.kind, Kind::Streaming(stream) if stream.is_holding())
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Passthrough(body) => body.as_mut().poll_frame(cx).map_err(Into::into),
            Kind::Streaming(stream) => match ready!(Pin::new(&mut **stream).poll_next(cx)) {
                Some(Ok(chunk)) => Poll::Ready(Some(Ok(chunk.frame))),
                Some(Err(error)) => Poll::Ready(Some(Err(error))),
                None => Poll::Ready(None),
            },
            Kind::Failed(error) => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole(bytes) => bytes.is_none(),
            Kind::Passthrough(body) => body.is_end_stream(),
            Kind::Streaming(_) => false,
            Kind::Failed(error) => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Passthrough(body) => body.size_hint(),
            Kind::Streaming(_) | Kind::Failed(_) => SizeHint::default(),
        }
    }
}

impl<B> fmt::Debug for LimitedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Whole(_) => "whole",
            Kind::Passthrough(_) => "passthrough",
            Kind::Streaming(_) => "streaming",
            Kind::Failed(_) => "failed",
        };
        f.debug_struct("LimitedBody")
            .field("kind", &kind)
            .field("holding", &self.is_holding())
            .finish()
    }
}

/// A streamed body's frames, each with the usage its complete SSE events reported.
pub(crate) struct SseFrames<B> {
    body: Pin<Box<B>>,
    /// The bytes of the event not yet complete.
    pending: Vec<u8>,
}

impl<B> SseFrames<B> {
    pub(crate) fn new(body: B) -> Self {
        SseFrames {
            body: Box::pin(body),
            pending: Vec::new(),
        }
    }

    /// Takes in `data`, and returns the usage the events it completes report, merged as a
    /// stream's usage is (a later count replaces an earlier one).
    fn read(&mut self, data: &[u8]) -> Option<StreamUsageUpdate> {
        self.pending.extend_from_slice(data);
        let mut merged: Option<StreamUsageUpdate> = None;
        while let Some((end, separator)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + separator).collect();
            if let Some(update) = event_usage(&event[..end]) {
                merged = Some(match merged {
                    None => update,
                    Some(earlier) => StreamUsageUpdate {
                        input_tokens: update.input_tokens.or(earlier.input_tokens),
                        output_tokens: update.output_tokens.or(earlier.output_tokens),
                        cache_read_input_tokens: update
                            .cache_read_input_tokens
                            .or(earlier.cache_read_input_tokens),
                        cache_creation_input_tokens: update
                            .cache_creation_input_tokens
                            .or(earlier.cache_creation_input_tokens),
                    },
                });
            }
        }
        if self.pending.len() > MAX_EVENT {
            self.pending.clear();
        }
        merged
    }
}

/// Where the first event in `buffer` ends, and the length of the blank line that ends it.
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        let rest = &buffer[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            Some((i, 2))
        } else {
            None
        }
    })
}

/// The usage one SSE event's `data:` (as JSON) reports.
fn event_usage(event: &[u8]) -> Option<StreamUsageUpdate> {
    let text = std::str::from_utf8(event).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    let value: Value = serde_json::from_str(&data.join("\n")).ok()?;
    StreamUsage::usage(&value)
}

/// One frame of a streamed body and the usage it completed.
pub(crate) struct SseChunk {
    pub(crate) frame: Frame<Bytes>,
    usage: Option<StreamUsageUpdate>,
}

impl StreamUsage for SseChunk {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        self.usage
    }
}

impl<B> Stream for SseFrames<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Item = Result<SseChunk, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(this.body.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => {
                let usage = frame.data_ref().and_then(|data| this.read(data));
                Poll::Ready(Some(Ok(SseChunk { frame, usage })))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(error.into()))),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_frames_are_read_once_complete() {
        let mut frames = SseFrames::new(http_body_util::Empty::<Bytes>::new());
        assert_eq!(
            frames.read(b"data: {\"usage\": {\"prompt_tokens\": 5, \"compl"),
            None
        );
        let update = frames
            .read(b"etion_tokens\": 7}}\n\ndata: [DONE]\n\n")
            .unwrap();
        assert_eq!(
            (update.input_tokens, update.output_tokens),
            (Some(5), Some(7))
        );
        assert!(frames.pending.is_empty());
    }

    #[test]
    fn anthropic_events_in_one_frame_merge_field_by_field() {
        let mut frames = SseFrames::new(http_body_util::Empty::<Bytes>::new());
        let events = concat!(
            "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\r\n\r\n",
            "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":30}}\r\n\r\n",
        );
        let update = frames.read(events.as_bytes()).unwrap();
        assert_eq!(
            (update.input_tokens, update.output_tokens),
            (Some(12), Some(30))
        );
    }
}
