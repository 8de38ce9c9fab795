//! The attribute on something that is not a function.
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
struct Client;

trait Chat {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
}

fn main() {}
