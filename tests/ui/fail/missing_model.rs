//! No `model`: it is the one required argument.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(tier = "tier-2")]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited]
async fn bare(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
