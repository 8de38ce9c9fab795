//! `self` by value, not `Clone`, in a method that may retry.
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

struct Client {
    name: String,
}

impl Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn into_name(self) -> Result<String, ApiError> {
        Ok(self.name)
    }
}

fn main() {}
