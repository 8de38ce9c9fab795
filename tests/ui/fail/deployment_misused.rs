//! The binding is the attempt's `&Deployment`, in the body only: the keys run once per call,
//! before any attempt, and cannot see it; the body cannot use it as another type.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = "gpt-4o", deployment = deployment, tokens = deployment.name().len())]
async fn in_a_key(prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", deployment.name()))
}

#[rate_limited(pool = "gpt-4o", deployment = deployment)]
async fn as_a_string(prompt: &str) -> Result<String, ApiError> {
    let url: &str = deployment;
    Ok(format!("{url} {prompt}"))
}

fn main() {}
