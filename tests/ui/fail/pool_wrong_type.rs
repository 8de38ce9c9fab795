//! `pool` takes a `&str`-like expression; another type is reported at the expression.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = index, deployment = deployment)]
async fn chat(index: u32, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", deployment.name()))
}

fn main() {}
