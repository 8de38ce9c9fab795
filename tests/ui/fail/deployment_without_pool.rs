//! `deployment` binds the deployment of a pool call: alone, or beside `model`, it is an error.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(deployment = deployment)]
async fn alone(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", deployment = deployment)]
async fn with_model(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
