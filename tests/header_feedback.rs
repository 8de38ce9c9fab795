//! Following the server's own count in time: a batch that starts from full buckets at
//! headroom 1.0, where the first bursts spend 30 ms on the wire (new connections, the client's
//! work on the burst) and later requests 1 ms, and the server spends 200 ms on each. The
//! server's answers report its count (`x-ratelimit-remaining-*`) as of each request's arrival
//! and the time it spent (`openai-processing-ms`). The server's bucket restarted its refill
//! 30 ms after the limiter's: the limiter must charge that once, or the requests after the
//! bursts arrive before the server has refilled for them (3 429s); and otherwise keep pace with
//! the server. All in paused time, every duration exact.

use std::time::Duration;

use ratelimited::rate_limited;
use ratelimited::testing::{
    fresh_registry_with_env, spawn_scoped, MockLimits, MockProvider, MockRequest, MockResponse,
};
use ratelimited::CallError;
use tokio::time::Instant;

const MODEL: &str = "gpt-4o-mini";
const RPM: u64 = 300;
const TPM: u64 = 60_000;
const PROMPT: u64 = 700;
const MAX_TOKENS: u64 = 300;
const REQUESTS: u64 = 150;
/// Time on the wire while the client is busy with the opening burst and the flood that follows
/// the first answer (the first 500 ms), then after.
const CONNECTING: Duration = Duration::from_millis(30);
const ON_THE_WIRE: Duration = Duration::from_millis(1);
const PROCESSING: Duration = Duration::from_millis(200);

#[rate_limited(model = "gpt-4o-mini", retries = 20)]
async fn ask(
    provider: &MockProvider,
    request: &MockRequest,
    processing_header: bool,
) -> Result<MockResponse, CallError> {
    // The request reaches the server this long after its reservation.
    let connecting = provider.stats().elapsed < Duration::from_millis(500);
    tokio::time::sleep(if connecting { CONNECTING } else { ON_THE_WIRE }).await;
    let mut response = provider.chat(request).await.map_err(CallError::from)?;
    if !processing_header {
        response
            .headers
            .retain(|(name, _)| name != "openai-processing-ms");
    }
    Ok(response)
}

/// Runs the batch (all requests at once) and returns the server's 429s and the makespan.
async fn run(processing_header: bool) -> (u64, Duration) {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", RPM.to_string()),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", TPM.to_string()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
    ]);
    let provider = MockProvider::new(MockLimits::new(RPM, TPM)).latency(PROCESSING);
    let request = MockRequest::new(MODEL, PROMPT).max_tokens(MAX_TOKENS);
    let start = Instant::now();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (provider, request) = (provider.clone(), request.clone());
            spawn_scoped(async move { ask(&provider, &request, processing_header).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every call succeeds");
    }
    (provider.stats().rate_limited, start.elapsed())
}

/// The earliest the batch can end: the server's token bucket, full until the first arrival
/// (at 30 ms) and refilled at 1,000 tokens a second, lets the whole charge through; the last
/// answer comes the processing time after.
fn minimum() -> Duration {
    let charge = REQUESTS * (PROMPT + MAX_TOKENS);
    let refill = Duration::from_millis((charge - TPM) * 60_000 / TPM);
    CONNECTING + refill + PROCESSING
}

#[tokio::test(start_paused = true)]
async fn with_the_servers_processing_time_the_batch_keeps_pace_and_draws_no_429() {
    let (rate_limited, makespan) = run(true).await;
    println!(
        "with openai-processing-ms: {rate_limited} 429s, {makespan:?}, the minimum {:?}",
        minimum()
    );
    assert_eq!(rate_limited, 0);
    // The last request reaches the server the moment its bucket allows: the makespan is the
    // minimum plus that request's 1 ms on the wire.
    assert_eq!(makespan, minimum() + ON_THE_WIRE);
}

#[tokio::test(start_paused = true)]
async fn without_it_the_limiter_trails_the_server_by_a_latency_and_still_draws_no_429() {
    let (with, fast) = run(true).await;
    let (without, slow) = run(false).await;
    println!("429s {with} / {without}; makespan {fast:?} with the header, {slow:?} without");
    assert_eq!((with, without), (0, 0));
    // Read as the level when the answer arrives, each count may be a whole round trip (about
    // 200 ms, 200 tokens here) old: the batch ends later by about that.
    assert!(
        slow > fast + Duration::from_millis(100),
        "{slow:?} vs {fast:?}"
    );
}
