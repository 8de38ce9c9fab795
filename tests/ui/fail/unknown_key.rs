//! Keys the attribute does not know, with a suggestion for a near miss.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", temperature = 0.2)]
async fn unknown(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", retry = 3)]
async fn misspelled(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
