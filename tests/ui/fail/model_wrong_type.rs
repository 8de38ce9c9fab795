//! A `model` expression that is not a string.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = size)]
async fn summarize(prompt: &str, size: u32) -> Result<String, ApiError> {
    Ok(format!("{prompt}{size}"))
}

fn main() {}
