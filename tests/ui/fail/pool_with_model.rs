//! `pool` names a deployment pool whose deployments serve their own models: `model` beside it
//! is an error at `model`.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o", pool = "gpt-4o", deployment = deployment)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", deployment.name()))
}

fn main() {}
