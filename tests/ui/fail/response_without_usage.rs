//! A success type that does not report usage.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

struct Reply(String);

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<Reply, ApiError> {
    Ok(Reply(prompt.to_owned()))
}

fn main() {}
