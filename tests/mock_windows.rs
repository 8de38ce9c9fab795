//! The mock provider as the servers and gateways that count differently (issue 19, item 4): a
//! fixed minute that starts over at its boundary, a sliding minute, and a gateway's headers (no
//! resets, a 429 whose only hint is `llm_provider-retry-after`). Paused tokio time.

use std::time::Duration;

use ratelimited::testing::{MockHeaders, MockLimits, MockProvider, MockRequest, MockWindow};
use ratelimited::Classify;
use tokio::time::Instant;

/// A request costs 1 request and 1 + 0 tokens: the tests count requests.
fn request() -> MockRequest {
    MockRequest::new("gateway-model", 1).max_tokens(0)
}

/// Sends until the first 429; returns how many were admitted.
async fn until_refused(provider: &MockProvider) -> u64 {
    let mut admitted = 0;
    while provider.chat(&request()).await.is_ok() {
        admitted += 1;
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_fixed_minute_starts_over_at_its_boundary_and_not_before() {
    let provider = MockProvider::new(MockLimits::new(120, 1_000_000)).window(MockWindow::Fixed);
    let start = Instant::now();
    assert_eq!(until_refused(&provider).await, 120);
    // A continuous bucket would admit two a second from here; the fixed minute admits none
    // until it turns.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(provider.chat(&request()).await.is_err());
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(Instant::now() - start, Duration::from_secs(60));
    assert_eq!(until_refused(&provider).await, 120, "a whole minute again");
}

#[tokio::test(start_paused = true)]
async fn a_sliding_minute_frees_what_was_admitted_a_minute_ago() {
    let provider = MockProvider::new(MockLimits::new(120, 1_000_000)).window(MockWindow::Sliding);
    // 60 at 0 s, 60 at 30 s: full.
    for _ in 0..60 {
        provider.chat(&request()).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(until_refused(&provider).await, 60);
    // At 60 s the first 60 leave the window, not the others.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(until_refused(&provider).await, 60);
    let refused = provider.chat(&request()).await.unwrap_err();
    // The next frees at 90 s, when the second 60 leave.
    assert_eq!(refused.header("retry-after"), Some("30"));
}

#[tokio::test(start_paused = true)]
async fn a_gateway_sends_no_resets_and_only_a_prefixed_retry_after() {
    let provider = MockProvider::new(MockLimits::new(120, 1_000_000))
        .window(MockWindow::Fixed)
        .headers(MockHeaders::Gateway);
    let answer = provider.chat(&request()).await.unwrap();
    let headers = answer.rate_limit_headers();
    assert_eq!(headers.limit_requests, Some(120));
    assert_eq!(headers.remaining_requests, Some(119));
    assert_eq!(headers.reset_requests, None);
    until_refused(&provider).await;
    let refused = provider.chat(&request()).await.unwrap_err();
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), None);
    assert_eq!(refused.header("retry-after-ms"), None);
    // The minute turns in 60 s: the gateway's hint, which the classification reads.
    assert_eq!(refused.header("llm_provider-retry-after"), Some("60"));
    assert_eq!(
        refused.classify().retry_after(),
        Some(Duration::from_secs(60))
    );
}
