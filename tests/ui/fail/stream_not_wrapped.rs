//! `stream` on a function whose success type is not `RateLimitedStream<S>`.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
