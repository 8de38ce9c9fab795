//! Values of the wrong kind: `retries` takes an integer literal, `crate` a string literal
//! holding a path, `model` a string.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", retries = "3")]
async fn quoted_retries(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", retries = max_retries)]
async fn computed_retries(prompt: &str, max_retries: u32) -> Result<String, ApiError> {
    Ok(format!("{prompt}{max_retries}"))
}

#[rate_limited(model = "gpt-4o-mini", crate = 5)]
async fn crate_number(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", crate = "not a path")]
async fn crate_not_a_path(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = 4, tokens = "500")]
async fn literals(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", provider = "openia")]
async fn unknown_provider(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
