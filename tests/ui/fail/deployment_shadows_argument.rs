//! The deployment binding may not hide an argument in the body, a destructured one included.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = "gpt-4o", deployment = prompt)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[derive(Clone)]
struct Request {
    prompt: String,
}

#[rate_limited(pool = "gpt-4o", deployment = prompt)]
async fn destructured(Request { prompt }: Request, deployment: &str) -> Result<String, ApiError> {
    Ok(format!("{deployment} {prompt}"))
}

fn main() {}
