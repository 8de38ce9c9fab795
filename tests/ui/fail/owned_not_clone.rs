//! An owned argument that is not `Clone`, in a function that may retry.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

struct Request {
    prompt: String,
}

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(request: Request) -> Result<String, ApiError> {
    Ok(request.prompt)
}

fn main() {}
