//! The rate-limit headers of a streamed response (issue 19, item 7): a body that returns its
//! stream in `WithHeaders` has them applied when the stream starts, as a whole response's are
//! when it arrives; a bare stream has none to apply.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use ratelimited::http::{RateLimitHeaders, WithHeaders};
use ratelimited::testing::{
    fresh_registry_with_env, MockLimits, MockProvider, MockRequest, MockStream, StreamPacing,
};
use ratelimited::{limiter::Dimension, rate_limited, stream::RateLimitedStream, Registry};

mod common;
use common::ApiError;

/// The server reports a 3,000-token limit, below the configured 6,000.
fn lower_tier() -> RateLimitHeaders {
    RateLimitHeaders::from_pairs(
        [
            ("x-ratelimit-limit-tokens", "3000"),
            ("x-ratelimit-remaining-tokens", "2500"),
        ],
        SystemTime::now(),
    )
}

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn stream_with_headers(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<RateLimitedStream<WithHeaders<MockStream>>, ApiError> {
    let pacing = StreamPacing::new(3, Duration::from_millis(100));
    let stream = provider
        .chat_stream(request, pacing)
        .await
        .map_err(ApiError::Http)?;
    Ok(WithHeaders {
        body: stream,
        headers: lower_tier(),
    })
}

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn bare_stream(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let pacing = StreamPacing::new(3, Duration::from_millis(100));
    provider
        .chat_stream(request, pacing)
        .await
        .map_err(ApiError::Http)
}

fn tpm() -> Option<u64> {
    Registry::current()
        .limiter("gpt-4o-mini")
        .unwrap()
        .limiter
        .quota()
        .limit(Dimension::TokensPerMinute)
}

#[tokio::test(start_paused = true)]
async fn a_streamed_responses_headers_apply_when_the_stream_starts() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "6000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let provider = MockProvider::new(MockLimits::new(1_000, 100_000)).completion_fraction(1.0);
    let request = MockRequest::new("gpt-4o-mini", 50).max_tokens(30);

    let bare = bare_stream(&provider, &request).await.unwrap();
    assert_eq!(tpm(), Some(6_000), "a bare stream has no headers");
    let bare_items = bare.collect::<Vec<_>>().await.len();
    assert!(bare_items >= 3, "{bare_items} items");

    let mut stream = stream_with_headers(&provider, &request).await.unwrap();
    // Adopted before the first chunk is read.
    assert_eq!(tpm(), Some(3_000));
    let mut chunks = 0;
    while let Some(item) = stream.next().await {
        item.unwrap();
        chunks += 1;
    }
    assert_eq!(chunks, bare_items, "the items pass through unchanged");
    assert!(!stream.is_holding(), "settled at its end");
}
