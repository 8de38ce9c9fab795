//! `model` misspelled: one error, with the suggestion, and no "missing `model`" beside it.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(modle = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
