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
        "fixed-window server, 300 requests at {RPM} RPM: not configured {continuous:?} with \
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

/// Issue 19, item 1, without resets: a gateway whose answers carry `remaining` and `limit`
/// only, and whose 429s carry only `llm_provider-retry-after` (LiteLLM). Not configured,
/// the first 429 asks to wait for the window's boundary, far longer than a refilling bucket
/// would make one request wait: the family follows a window from then on, one 429 in all
/// where a bucket draws one in every window.
#[tokio::test(start_paused = true)]
async fn a_fixed_window_without_resets_is_learned_at_its_first_429() {
    let (continuous, continuous_429s) = {
        let _registry = fresh_registry_with_env(gateway_vars(Some("continuous")));
        let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000))
            .window(MockWindow::Fixed)
            .headers(MockHeaders::Gateway);
        let start = Instant::now();
        send_300(&provider).await;
        (start.elapsed(), provider.rejections().len())
    };
    let (learned, learned_429s) = run(None).await;
    let window = {
        let _registry = fresh_registry_with_env(gateway_vars(None));
        let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000))
            .window(MockWindow::Fixed)
            .headers(MockHeaders::Gateway);
        send_300(&provider).await;
        family_window()
    };
    println!(
        "fixed window, gateway headers (no reset), 300 requests: continuous bucket {continuous:?} \
         with {continuous_429s} 429s; learned ({window:?}) {learned:?} with {learned_429s} 429s"
    );
    assert_eq!(window, ratelimited::limiter::Window::Sliding);
    assert!(continuous_429s >= 2, "{continuous_429s}");
    assert_eq!(learned_429s, 1);
    // The requests sent before the 429 count in the log as of the 429 (the bucket knows how
    // many, not when): the window after next starts a few seconds late.
    assert!(
        learned <= Duration::from_secs(120).mul_f64(1.06),
        "{learned:?}"
    );
}

/// A refilling bucket's 429s ask for about one request's refill: they teach nothing, even
/// from a server that sends no reset header. Another client on the same key (bursts of 100
/// raw requests 1 s and 40 s in, unseen by the limiter) makes the server answer 429s at all.
#[tokio::test(start_paused = true)]
async fn a_refilling_bucket_s_429s_do_not_teach_a_window() {
    let _registry = fresh_registry_with_env(gateway_vars(None));
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000)).headers(MockHeaders::Gateway);
    let start = Instant::now();
    let other = {
        let provider = provider.clone();
        tokio::spawn(async move {
            for at in [1, 40] {
                tokio::time::sleep_until(start + Duration::from_secs(at)).await;
                for _ in 0..100 {
                    let request = MockRequest::new("gateway-model", 10).max_tokens(0);
                    let _ = provider.chat(&request).await;
                }
            }
        })
    };
    send_300(&provider).await;
    other.await.unwrap();
    let stats = ratelimited::stats::snapshot();
    let ours = stats.family("gateway-model").unwrap().retries.rate_limited;
    println!("{ours} 429s from a refilling bucket to the limited client");
    assert!(ours > 0);
    assert_eq!(family_window(), ratelimited::limiter::Window::Continuous);
}

/// 300 calls through a fixed-window gateway whose windows started `offset` before the first
/// call, with `WINDOW` set to `window`: the makespan, the 429s and whether the limiter
/// aligned on the gateway's boundary.
async fn offset_run(
    window: &str,
    headers: MockHeaders,
    offset: Duration,
) -> (Duration, usize, bool) {
    let _registry = fresh_registry_with_env(gateway_vars(Some(window)));
    let provider = MockProvider::new(MockLimits::new(RPM, 1_000_000))
        .window(MockWindow::Fixed)
        .headers(headers);
    tokio::time::advance(offset).await;
    let start = Instant::now();
    send_300(&provider).await;
    let aligned = ratelimited::Registry::current()
        .limiter("openai/gateway-model")
        .unwrap()
        .limiter
        .windows_aligned();
    (start.elapsed(), provider.rejections().len(), aligned)
}

/// Issue 19, item 1, aligned: the gateway's windows start 30 s into the run. At most the
/// limit in any minute (`sliding`) needs 120 s for 300 requests; `fixed` learns the boundary
/// from the first answers' resets and sends each window's whole limit at its start: the
/// third window the requests need starts at 90 s, the server's own minimum.
#[tokio::test(start_paused = true)]
async fn a_fixed_window_s_boundary_is_followed_from_its_resets() {
    let offset = Duration::from_secs(30);
    let (sliding, sliding_429s, _) = offset_run("sliding", MockHeaders::Provider, offset).await;
    let (fixed, fixed_429s, aligned) = offset_run("fixed", MockHeaders::Provider, offset).await;
    // 114 a window (120 at headroom 0.95): 30 s left of the first, then 90 s is the third.
    let minimum = Duration::from_secs(90);
    println!(
        "fixed window starting 30 s before the run, 300 requests: sliding {sliding:?} \
         ({sliding_429s} 429s); fixed, aligned {aligned}: {fixed:?} ({fixed_429s} 429s); \
         server minimum {minimum:?}, {:.3}x",
        fixed.as_secs_f64() / minimum.as_secs_f64()
    );
    assert_eq!((sliding_429s, fixed_429s), (0, 0));
    assert!(aligned);
    assert!(
        fixed >= minimum && fixed <= minimum + Duration::from_secs(2),
        "{fixed:?}"
    );
    assert!(sliding >= Duration::from_secs(120), "{sliding:?}");
}
