//! Malformed argument lists.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model)]
async fn no_value(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini" tier = "tier-1")]
async fn no_comma(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited("gpt-4o-mini")]
async fn positional(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
