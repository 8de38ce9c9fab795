//! The body returns the wrong type: the error points into the body and at the signature,
//! as it would without the attribute.
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

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.len())
}

fn main() {}
