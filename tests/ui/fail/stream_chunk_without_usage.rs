//! A stream whose chunk type does not report usage.
use std::time::Duration;

use ratelimited::rate_limited;
use ratelimited::stream::RateLimitedStream;
use ratelimited::testing::MockStream;

mod support;
use support::ApiError;

struct Chunk(String);

struct Chunks(Vec<Chunk>);

impl futures_util::Stream for Chunks {
    type Item = Result<Chunk, ApiError>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let _ = (MockStream::scripted([]), Duration::ZERO);
        std::task::Poll::Ready(self.get_mut().0.pop().map(Ok))
    }
}

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn chat(prompt: &str) -> Result<RateLimitedStream<Chunks>, ApiError> {
    Ok(Chunks(vec![Chunk(prompt.to_owned())]))
}

fn main() {}
