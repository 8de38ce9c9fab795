//! A success type that does not report usage.
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

struct Reply(String);

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<Reply, ApiError> {
    Ok(Reply(prompt.to_owned()))
}

fn main() {}
