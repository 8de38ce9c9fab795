//! A server that counts per window, not with a continuous refill (issue 19, item 1): 300
//! mixed requests through `#[rate_limited]` against the mock counting a fixed minute (as a
//! gateway does), in paused time. With `RATE_LIMITED_<FAMILY>_WINDOW=fixed` the limiter sends
//! at most the limit in any minute: no 429, in the number of windows the requests need.

use std::time::Duration;

use ratelimited::testing::{
    fresh_registry_with_env, MockHeaders, MockLimits, MockProvider, MockRequest, MockResponse,
    MockWindow,
};
use ratelimited::{rate_limited, testing::spawn_scoped};
use tokio::time::Instant;

mod common;
use common::ApiError;

const RPM: u64 = 120;

#[rate_limited(model = "gateway-model", provider = "openai", tokens = prompt, max_tokens = 0, retries = 20)]
async fn call(provider: &MockProvider, prompt: u64) -> Result<MockResponse, ApiError> {
    let request = MockRequest::new("gateway-model", prompt).max_tokens(0);
    provider.chat(&request).await.map_err(ApiError::Http)
}

/// The gateway family's limits (120 RPM, headroom 0.95), and its window if set.
fn gateway_vars(window: Option<&str>) -> Vec<(String, String)> {
    let mut vars = vec![
        ("RATE_LIMITED_GATEWAY_MODEL_RPM".to_owned(), RPM.to_string()),
        (
            "RATE_LIMITED_GATEWAY_MODEL_TPM".to_owned(),
            "1000000".to_owned(),
        ),
        ("RATE_LIMITED_HEADROOM".to_owned(), "0.95".to_owned()),
    ];
    if let Some(window) = window {
        vars.push((
            "RATE_LIMITED_GATEWAY_MODEL_WINDOW".to_owned(),
            window.to_owned(),
        ));
    }
    vars
}

/// 300 calls of 10-59 prompt tokens from 30 tasks at once.
async fn send_300(provider: &MockProvider) {
    let tasks: Vec<_> = (0..30u64)
        .map(|task| {
            let provider = provider.clone();
            spawn_scoped(async move {
                for i in 0..10u64 {
                    call(&provider, 10 + (task * 10 + i) % 50).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// How the gateway family counts now.
fn family_window() -> ratelimited::limiter::Window {
    ratelimited::Registry::current()
        .limiter("openai/gateway-model")
        .unwrap()
        .limiter
        .quota()
        .window
}

/// 300 calls through the fixed-window gateway; the makespan and the 429s seen.
async fn run(window: Option<&str>) -> (Duration, usize) {
    let _registry = fresh_registry_with_env(gateway_vars(window));
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000))
        .window(MockWindow::Fixed)
        .headers(MockHeaders::Gateway);
    let start = Instant::now();
    send_300(&provider).await;
    (start.elapsed(), provider.rejections().len())
}

#[tokio::test(start_paused = true)]
async fn a_fixed_window_server_gets_no_429_when_the_family_says_so() {
    let (continuous, continuous_429s) = run(None).await;
    let (windowed, windowed_429s) = run(Some("fixed")).await;
    // 300 requests at 114 a window (120 at headroom 0.95): the third window's start, at least.
    let minimum = Duration::from_secs(120);
    println!(
        "fixed-window server, 300 requests at {RPM} RPM: continuous bucket {continuous:?} with \
         {continuous_429s} 429s; WINDOW=fixed {windowed:?} with {windowed_429s} 429s \
         (minimum {minimum:?})"
    );
    assert_eq!(windowed_429s, 0);
    assert!(windowed >= minimum, "{windowed:?}");
    assert!(
        windowed <= minimum + Duration::from_secs(60),
        "{windowed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_window_is_a_configuration_error_naming_the_variable() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GATEWAY_MODEL_RPM", "120"),
        ("RATE_LIMITED_GATEWAY_MODEL_WINDOW", "calendar"),
    ]);
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000));
    let err = call(&provider, 10).await.unwrap_err();
    let message = format!("{err:?}");
    assert!(
        message.contains("RATE_LIMITED_GATEWAY_MODEL_WINDOW") && message.contains("sliding"),
        "{message}"
    );
}

#[rate_limited(
    model = "after-model",
    provider = "openai",
    tokens = 100,
    max_tokens = 1_000,
    retries = 20
)]
async fn long_answer(provider: &MockProvider) -> Result<MockResponse, ApiError> {
    let request = MockRequest::new("after-model", 100).max_tokens(1_000);
    provider.chat(&request).await.map_err(ApiError::Http)
}

/// 60 calls of 100 prompt tokens and `max_tokens` 1,000 that use 100 of them, from 10 tasks,
/// against a gateway that counts tokens from each answer's usage (6,000 TPM, 1 s answers);
/// the makespan and the 429s.
async fn after_response(charged: Option<&str>) -> (Duration, usize) {
    let mut vars = vec![
        (
            "RATE_LIMITED_AFTER_MODEL_RPM".to_owned(),
            "10000".to_owned(),
        ),
        ("RATE_LIMITED_AFTER_MODEL_TPM".to_owned(), "6000".to_owned()),
        ("RATE_LIMITED_HEADROOM".to_owned(), "0.95".to_owned()),
    ];
    if let Some(charged) = charged {
        vars.push((
            "RATE_LIMITED_AFTER_MODEL_CHARGED".to_owned(),
            charged.to_owned(),
        ));
    }
    let _registry = fresh_registry_with_env(vars);
    let provider = MockProvider::new(MockLimits::new(10_000, 6_000))
        .charged_after(true)
        .completion_fraction(0.1)
        .latency(Duration::from_secs(1));
    let start = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let provider = provider.clone();
            spawn_scoped(async move {
                for _ in 0..6 {
                    long_answer(&provider).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (start.elapsed(), provider.rejections().len())
}

/// Issue 19, item 3: against a server that counts from the answer, reserving `max_tokens` on
/// arrival is safe but slow; `RATE_LIMITED_<FAMILY>_CHARGED=response` reserves no output and
/// admits while the buckets are not full, as the server does: faster, and still no 429.
#[tokio::test(start_paused = true)]
async fn a_server_that_counts_from_the_answer_is_followed_when_the_family_says_so() {
    let (arrival, arrival_429s) = after_response(None).await;
    let (response, response_429s) = after_response(Some("response")).await;
    println!(
        "server counting from the answer, 60 calls: reserving max_tokens on arrival {arrival:?} \
         ({arrival_429s} 429s); CHARGED=response {response:?} ({response_429s} 429s)"
    );
    assert_eq!((arrival_429s, response_429s), (0, 0));
    assert!(response < arrival, "{response:?} against {arrival:?}");
}

/// Issue 19, item 1: not configured, the window is learned from the answers' resets (a fixed
/// window's count down to one boundary while the counts fall; a refilling bucket's would move)
/// within the first window: 300 requests, no 429.
#[tokio::test(start_paused = true)]
async fn a_fixed_window_is_learned_from_the_resets_within_the_first_window() {
    let _registry = fresh_registry_with_env(gateway_vars(None));
    // OpenAI's headers: the resets are there.
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000)).window(MockWindow::Fixed);
    let start = Instant::now();
    send_300(&provider).await;
    let window = family_window();
    println!(
        "fixed window learned: {:?} in {:?}, {} 429s",
        window,
        start.elapsed(),
        provider.rejections().len()
    );
    assert_eq!(window, ratelimited::limiter::Window::Sliding);
    assert_eq!(provider.rejections().len(), 0);
}

/// The same load against a refilling bucket (OpenAI's resets: "full again" moves with every
/// use) teaches nothing: the family stays continuous.
#[tokio::test(start_paused = true)]
async fn a_refilling_bucket_is_not_taken_for_a_window() {
    let _registry = fresh_registry_with_env(gateway_vars(None));
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000));
    send_300(&provider).await;
    let window = family_window();
    assert_eq!(window, ratelimited::limiter::Window::Continuous);
    assert_eq!(provider.rejections().len(), 0);
}
