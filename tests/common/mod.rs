//! What the integration tests share.

use ratelimited::http::HttpError;
use ratelimited::{Classify, Verdict};

/// A fake API's error: the server's answer, or the limiter's own failure.
#[derive(Debug)]
pub enum ApiError {
    Http(HttpError),
    Limiter(ratelimited::Error),
}

impl From<ratelimited::Error> for ApiError {
    fn from(e: ratelimited::Error) -> Self {
        ApiError::Limiter(e)
    }
}

impl Classify for ApiError {
    fn classify(&self) -> Verdict {
        match self {
            ApiError::Http(e) => e.classify(),
            ApiError::Limiter(e) => e.classify(),
        }
    }

    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        match self {
            ApiError::Http(e) => e.to_error_source(),
            ApiError::Limiter(e) => e.to_error_source(),
        }
    }
}
