//! The names the expansion introduces are hygienic: the body cannot use them.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    let _ = __rl_call.attempts();
    Ok(prompt.to_owned())
}

fn main() {}
