//! `impl Trait` in the return type.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<impl ratelimited::ReportUsage, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
