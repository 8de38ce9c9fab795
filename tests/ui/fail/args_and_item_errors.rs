//! A bad argument and a bad signature are both reported.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", colour = "red")]
fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
