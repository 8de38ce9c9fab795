//! A pool call must know where each attempt goes: `pool` without `deployment` is an error.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = "gpt-4o")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
