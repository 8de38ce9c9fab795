//! `stream` is a flag, not a key with a value.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", stream = true)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
