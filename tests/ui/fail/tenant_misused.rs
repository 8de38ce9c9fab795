//! `tenant` takes a string or integer id, and is not taken with `pool` (yet): each is reported
//! at its own tokens.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", tenant = score)]
async fn by_score(score: f64, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{score} {prompt}"))
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tenant = user)]
async fn pooled(user: &str, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {user} {prompt}", deployment.name()))
}

fn main() {}
