//! Shared by the fail cases: an API error type that `#[rate_limited]` accepts, so each case
//! fails for its own reason only.

#![allow(dead_code)]

#[derive(Debug)]
pub struct ApiError;

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
