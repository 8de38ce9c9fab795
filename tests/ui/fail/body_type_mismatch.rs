//! The body returns the wrong type: the error points into the body and at the signature,
//! as it would without the attribute.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.len())
}

fn main() {}
