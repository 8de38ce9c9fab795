//! The error of an OpenAI-compatible call, as an application would write it for
//! `#[rate_limited]`: the server's answer, a transport failure, or the limiter's own.
//!
//! The examples and the integration tests (tests/common) both include this file, so the type a
//! test exercises is the one the examples show.

use ratelimited::http::HttpError;
use ratelimited::{Classify, Verdict};
use serde_json::Value;

/// Everything a chat call can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// The server answered with an error status.
    Http(HttpError),
    /// The request never got an answer (connection, timeout, unreadable body).
    // The integration tests include this file too, and they have no transport.
    #[allow(dead_code)]
    Transport(String),
    /// The limiter refused or gave up (request too large, retries spent, ...).
    Limiter(ratelimited::Error),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Http(e) => {
                // OpenAI's envelope: show its message, not the JSON.
                let body: Option<Value> = serde_json::from_str(&e.body).ok();
                let message = body.as_ref().and_then(|b| b["error"]["message"].as_str());
                write!(f, "HTTP {}: {}", e.status, message.unwrap_or(&e.body))
            }
            ApiError::Transport(e) => write!(f, "transport: {e}"),
            ApiError::Limiter(e) => write!(f, "limiter: {e}"),
        }
    }
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
            ApiError::Transport(_) => Verdict::Transient { retry_after: None },
            ApiError::Limiter(e) => e.classify(),
        }
    }

    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        match self {
            ApiError::Http(e) => e.to_error_source(),
            ApiError::Transport(e) => Some(e.clone().into()),
            ApiError::Limiter(e) => e.to_error_source(),
        }
    }
}
