//! `#[rate_limited(model = .., stream)]` in paused time: the reservation and its in-flight slot
//! live as long as the stream, settle from the stream's own usage at its end, and every ending
//! (usage, none, dropped, an error item) keeps what it should.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::http::HttpError;
use ratelimited::testing::{
    fresh_registry_with_env, Fault, MockLimits, MockProvider, MockRequest, MockStream, StreamPacing,
};
use ratelimited::{limiter::Dimension, rate_limited, stream::RateLimitedStream, Limiter, Registry};
use serde_json::{json, Value};
use tokio::time::Instant;

mod common;
use common::ApiError;

/// A provider whose own limits never bind: the tests measure the client's limiter.
fn roomy_provider() -> MockProvider {
    MockProvider::new(MockLimits::new(100_000, 100_000_000)).completion_fraction(1.0)
}

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn stream_chat(
    provider: &MockProvider,
    request: &MockRequest,
    pacing: StreamPacing,
) -> Result<RateLimitedStream<MockStream>, ApiError> {
    provider
        .chat_stream(request, pacing)
        .await
        .map_err(ApiError::Http)
}

fn limiter(model: &str) -> Limiter {
    Registry::current().limiter(model).unwrap().limiter
}

/// Reads a stream to its end; the `Ok` chunks and the `Err` items.
async fn drain<S, C, E>(mut stream: S) -> (Vec<C>, Vec<E>)
where
    S: futures_util::Stream<Item = Result<C, E>> + Unpin,
{
    let (mut chunks, mut errors) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => errors.push(error),
        }
    }
    (chunks, errors)
}

#[tokio::test(start_paused = true)]
async fn a_30_second_stream_holds_its_concurrency_slot_for_exactly_30_seconds() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "1")]);
    let provider = roomy_provider();
    let request = MockRequest::new("gpt-4o-mini", 50).max_tokens(60);
    let pacing = StreamPacing::new(30, Duration::from_secs(1));
    let start = Instant::now();

    let first = stream_chat(&provider, &request, pacing).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        limiter("gpt-4o-mini").in_use(Dimension::Concurrency),
        Some(1)
    );

    let read_first = async {
        let (chunks, errors) = drain(first).await;
        (chunks.len(), errors.len(), start.elapsed())
    };
    let second = async {
        let stream = stream_chat(&provider, &request, pacing).await.unwrap();
        (start.elapsed(), stream)
    };
    let ((chunks, errors, first_ended), (second_admitted, second_stream)) =
        tokio::join!(read_first, second);
    assert_eq!(
        (chunks, errors),
        (31, 0),
        "30 content chunks and the usage chunk"
    );
    assert_eq!(first_ended, Duration::from_secs(30));
    assert_eq!(second_admitted, Duration::from_secs(30));
    assert!(second_stream.is_holding());
    drop(second_stream);
    assert_eq!(
        limiter("gpt-4o-mini").in_use(Dimension::Concurrency),
        Some(0)
    );
}

#[tokio::test(start_paused = true)]
async fn settles_at_the_end_with_the_final_usage_and_the_next_waiter_sees_the_refund() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_HEADROOM", "1"),
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "1000"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "1000"),
    ]);

    // The estimate says 600 prompt tokens, the server counts 100: 500 go back at the end.
    #[rate_limited(model = "gpt-4o-mini", tokens = 600, stream)]
    async fn overestimated(
        provider: &MockProvider,
        request: &MockRequest,
    ) -> Result<RateLimitedStream<MockStream>, ApiError> {
        let pacing = StreamPacing::new(10, Duration::from_secs(1));
        provider
            .chat_stream(request, pacing)
            .await
            .map_err(ApiError::Http)
    }

    let provider = roomy_provider();
    let request = MockRequest::new("gpt-4o-mini", 100).max_tokens(100);
    let start = Instant::now();
    let first = overestimated(&provider, &request).await.unwrap();
    let tokens = limiter("gpt-4o-mini");
    assert_eq!(tokens.in_use(Dimension::TokensPerMinute), Some(700));

    let read_first = async {
        let mut first = first;
        while first.next().await.is_some() {}
        (start.elapsed(), first.usage())
    };
    let second = async {
        let stream = overestimated(&provider, &request).await.unwrap();
        (start.elapsed(), stream)
    };
    let ((ended, usage), (admitted, _second)) = tokio::join!(read_first, second);
    assert_eq!(ended, Duration::from_secs(10));
    assert_eq!(usage, Some(ratelimited::Usage::new(100, 100)));
    // Without the refund the second 700 would fit only when 400 more tokens had refilled, at
    // 24 s; settled to 200 at 10 s, it fits then.
    assert_eq!(admitted, Duration::from_secs(10));
}

#[rate_limited(model = "claude-sonnet-4", max_tokens = 1_000, tokens = 40, stream)]
async fn anthropic_stream(events: Vec<Value>) -> Result<RateLimitedStream<MockStream>, ApiError> {
    Ok(MockStream::scripted(
        events.into_iter().map(|event| (Duration::ZERO, Ok(event))),
    ))
}

#[tokio::test(start_paused = true)]
async fn anthropic_cumulative_output_is_taken_as_the_last_value_not_summed() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let events = vec![
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 30, "output_tokens": 1}}}),
        json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "message_delta", "usage": {"output_tokens": 10}}),
        json!({"type": "message_delta", "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ];
    let stream = anthropic_stream(events).await.unwrap();
    let claude = limiter("claude-sonnet-4");
    assert_eq!(claude.in_use(Dimension::OutputTokensPerMinute), Some(1_000));
    let (chunks, _) = drain(stream).await;
    assert_eq!(chunks.len(), 5);
    // Anthropic refunds unused output: settled to the last cumulative count (15), not 1+10+15.
    assert_eq!(claude.in_use(Dimension::OutputTokensPerMinute), Some(15));
    assert_eq!(claude.in_use(Dimension::InputTokensPerMinute), Some(30));
    assert_eq!(claude.in_use(Dimension::Concurrency).unwrap_or(0), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_without_usage_keeps_the_whole_reservation() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let events = vec![json!({"type": "content_block_delta", "delta": {"text": "Hi"}})];
    let stream = anthropic_stream(events).await.unwrap();
    let (chunks, _) = drain(stream).await;
    assert_eq!(chunks.len(), 1);
    let claude = limiter("claude-sonnet-4");
    assert_eq!(claude.in_use(Dimension::OutputTokensPerMinute), Some(1_000));
    assert_eq!(claude.in_use(Dimension::InputTokensPerMinute), Some(40));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_releases_its_slot_at_once_and_keeps_its_charge() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "1"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "600"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let provider = roomy_provider();
    let request = MockRequest::new("gpt-4o-mini", 50).max_tokens(60);
    let pacing = StreamPacing::new(30, Duration::from_secs(1));
    let start = Instant::now();

    let mut first = stream_chat(&provider, &request, pacing).await.unwrap();
    first.next().await.unwrap().unwrap();
    first.next().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let gpt = limiter("gpt-4o-mini");
    assert_eq!(gpt.in_use(Dimension::Concurrency), Some(1));
    // 110 charged at 0 s, 10 tokens a second refilled since.
    assert_eq!(gpt.in_use(Dimension::TokensPerMinute), Some(90));
    drop(first);

    assert_eq!(gpt.in_use(Dimension::Concurrency), Some(0));
    assert_eq!(
        gpt.in_use(Dimension::TokensPerMinute),
        Some(90),
        "the charge stays"
    );
    let _second = stream_chat(&provider, &request, pacing).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "the slot was free at once"
    );
}

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn failing_midway(
    runs: &AtomicU32,
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<RateLimitedStream<MockStream>, ApiError> {
    runs.fetch_add(1, Ordering::SeqCst);
    let pacing = StreamPacing::new(5, Duration::from_secs(1));
    let stream = provider
        .chat_stream(request, pacing)
        .await
        .map_err(ApiError::Http)?;
    Ok(stream.fail_after(2, HttpError::new(502, [("x", "y")], "upstream reset")))
}

#[tokio::test(start_paused = true)]
async fn an_error_mid_stream_goes_to_the_caller_and_is_not_retried() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_HEADROOM", "1")]);
    let provider = roomy_provider();
    let request = MockRequest::new("gpt-4o-mini", 50).max_tokens(60);
    let runs = AtomicU32::new(0);
    let start = Instant::now();

    let stream = failing_midway(&runs, &provider, &request).await.unwrap();
    let (chunks, errors) = drain(stream).await;
    assert_eq!(chunks.len(), 2);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].status, 502);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the output already went out: no retry"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // Not a transient failure of the family: nothing holds the next call back.
    let _next = failing_midway(&runs, &provider, &request).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(provider.stats().calls, 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_before_the_first_byte_is_retried_after_its_retry_after() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let provider = roomy_provider().fault(Fault::RateLimitStorm {
        until: Duration::from_millis(1_500),
    });
    let request = MockRequest::new("gpt-4o-mini", 50).max_tokens(60);
    let pacing = StreamPacing::new(3, Duration::from_secs(1));
    let start = Instant::now();

    let stream = stream_chat(&provider, &request, pacing).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(1_500));
    assert_eq!(provider.rejections().len(), 1);
    let (chunks, errors) = drain(stream).await;
    assert_eq!((chunks.len(), errors.len()), (4, 0));
    assert_eq!(start.elapsed(), Duration::from_millis(4_500));
}
