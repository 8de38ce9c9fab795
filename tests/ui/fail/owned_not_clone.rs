//! An owned argument that is not `Clone`, in a function that may retry.
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

struct Request {
    prompt: String,
}

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(request: Request) -> Result<String, ApiError> {
    Ok(request.prompt)
}

fn main() {}
