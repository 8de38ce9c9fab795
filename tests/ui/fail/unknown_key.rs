//! Keys the attribute does not know, with a suggestion for a near miss.
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

#[rate_limited(model = "gpt-4o-mini", temperature = 0.2)]
async fn unknown(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", retry = 3)]
async fn misspelled(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
