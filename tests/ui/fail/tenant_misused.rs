//! `tenant` takes a string or integer id, with `model` as with `pool`: a value that is none is
//! reported at its own tokens.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", tenant = score)]
async fn by_score(score: f64, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{score} {prompt}"))
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tenant = weight)]
async fn pooled(weight: f32, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {weight} {prompt}", deployment.name()))
}

fn main() {}
