//! The user's own lints still apply to an annotated function.
#![deny(dead_code, unused_mut)]

use ratelimited::rate_limited;

#[derive(Debug)]
#[allow(dead_code)]
struct ApiError;

impl From<ratelimited::Error> for ApiError {
    fn from(_: ratelimited::Error) -> Self {
        ApiError
    }
}

impl ratelimited::Classify for ApiError {
    fn classify(&self) -> ratelimited::Verdict {
        ratelimited::Verdict::Fatal
    }
}

#[rate_limited(model = "gpt-4o-mini")]
async fn never_called(mut prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

fn main() {}
