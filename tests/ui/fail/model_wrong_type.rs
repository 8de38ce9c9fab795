//! A `model` expression that is not a string.
use ratelimited::rate_limited;

#[derive(Debug)]
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

#[rate_limited(model = size)]
async fn summarize(prompt: &str, size: u32) -> Result<String, ApiError> {
    Ok(format!("{prompt}{size}"))
}

fn main() {}
