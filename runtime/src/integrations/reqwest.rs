//! [`reqwest`] 0.13 (feature `reqwest`): classify its errors and its failed responses.
//!
//! A raw HTTP call has two ways to fail: the transport (`reqwest::Error`: connect, timeout, a
//! reset mid-body) and the server (a non-2xx response, which reqwest does not treat as an error).
//! [`Classify`] is implemented for `reqwest::Error`; a failed response becomes an [`HttpError`]
//! (status, headers and body) through [`http_error`] or [`error_for_status`], so the limiter sees
//! the `retry-after-ms` / `retry-after` headers and the provider's error body (`insufficient_quota`,
//! "Request too large", "try again in 84ms") that decide whether and when to retry.
//! [`CallError`](crate::CallError) holds all three failures plus the limiter's own, ready to be a
//! rate-limited function's error type:
//!
//! ```no_run
//! # use ratelimited_runtime::facade as ratelimited;
//! use ratelimited::integrations::reqwest::error_for_status;
//! use ratelimited::CallError;
//! use serde_json::{json, Value};
//!
//! // With the facade: #[ratelimited::rate_limited(model = "gpt-4o-mini")]
//! async fn chat(client: &reqwest::Client, body: &Value) -> Result<Value, CallError> {
//!     let response = client
//!         .post("https://api.openai.com/v1/chat/completions")
//!         .bearer_auth(std::env::var("OPENAI_API_KEY").unwrap_or_default())
//!         .json(body)
//!         .send()
//!         .await?; // transport errors: timeouts and connect errors are retried
//!     // A 429 or 5xx becomes an `HttpError` that carries the server's retry hints.
//!     let response = error_for_status(response).await?;
//!     Ok(response.json().await?) // the `usage` object settles the reservation
//! }
//! # let _ = chat;
//! ```
//!
//! With your own error type, convert the same way:
//! `if !resp.status().is_success() { return Err(http_error(resp).await.into()); }`.
//!
//! The feature turns on reqwest's `json` feature (used above) and no TLS backend.

use std::error::Error as StdError;
use std::time::SystemTime;

use ::reqwest::Response;

use crate::answers::classify::{Classify, Verdict};
use crate::answers::http::RateLimitHeaders;
use crate::answers::http::{classify_http, HttpError};

/// Transport failures are worth retrying; a bad request or an undecodable body is not.
///
/// | error | verdict |
/// |---|---|
/// | from `Response::error_for_status` (`is_status`) | [`classify_http`] of its status alone (429 → [`Verdict::RateLimited`], 408/409/5xx → [`Verdict::Transient`], 413 → [`Verdict::RequestTooLarge`], else [`Verdict::Fatal`]); it has no headers or body, so prefer [`error_for_status`] from this module, which keeps them |
/// | timeout (`is_timeout`), connect (`is_connect`), sending the request (`is_request`), reading the body (`is_body`), or any error caused by a reset, aborted, refused or timed-out connection | [`Verdict::Transient`] |
/// | decoding the body (`is_decode`), building the request (`is_builder`), redirects, upgrades | [`Verdict::Fatal`] |
impl Classify for ::reqwest::Error {
    fn classify(&self) -> Verdict {
        if let Some(status) = self.status() {
            return classify_http(status.as_u16(), &|_| None, "", SystemTime::now());
        }
        if self.is_timeout()
            || self.is_connect()
            || self.is_request()
            || self.is_body()
            || caused_by_transient_io(self)
        {
            return Verdict::Transient { retry_after: None };
        }
        Verdict::Fatal
    }
}

/// True if an I/O error that [`std::io::Error`]'s [`Classify`] calls transient is in the chain.
fn caused_by_transient_io(error: &(dyn StdError + 'static)) -> bool {
    let mut source = error.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.classify().is_retryable() {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// Reads a response into an [`HttpError`]: its status, every header and the body text.
///
/// Use it on a response whose status is not a success; [`Classify`] then sees what the server
/// said (`retry-after-ms`, `retry-after`, `x-should-retry`, the error body). Header values that
/// are not UTF-8 are kept lossily; a body that cannot be read (the connection dropped) is left
/// empty, and the status and headers alone decide.
///
/// ```no_run
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::integrations::reqwest::http_error;
/// use ratelimited::{http::HttpError, Classify};
///
/// # async fn demo(client: reqwest::Client) -> Result<String, HttpError> {
/// let response = client.get("http://127.0.0.1:8080/v1/models").send().await.unwrap();
/// if !response.status().is_success() {
///     let error = http_error(response).await;
///     println!("{error} -> {:?}", error.classify());
///     return Err(error);
/// }
/// Ok(response.text().await.unwrap_or_default())
/// # }
/// ```
pub async fn http_error(response: Response) -> HttpError {
    let status = response.status().as_u16();
    let headers = crate::integrations::headers::header_pairs(response.headers());
    let body = response.text().await.unwrap_or_default();
    HttpError {
        status,
        headers,
        body,
    }
}

/// Passes a successful (2xx) response through, and turns any other into an [`HttpError`]
/// with [`http_error`].
///
/// Like `reqwest::Response::error_for_status`, but the error keeps the headers and body that
/// say whether and when to retry.
///
/// # Errors
/// The [`HttpError`] of a response whose status is not a success.
pub async fn error_for_status(response: Response) -> Result<Response, HttpError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(http_error(response).await)
    }
}

/// The rate-limit headers of a response (OpenAI/Azure `x-ratelimit-*`, Anthropic
/// `anthropic-ratelimit-*`), parsed as [`RateLimitHeaders::parse`] does, with Anthropic's reset
/// instants measured from the current wall-clock time.
///
/// Works on any response, successful or not, and does not consume it.
pub fn rate_limit_headers(response: &Response) -> RateLimitHeaders {
    crate::integrations::headers::rate_limit_headers(response.headers())
}

/// The ready-made error type for a rate-limited function that calls an API with `reqwest`:
/// [`crate::CallError`], which converts from `reqwest::Error`, [`HttpError`] and the limiter's
/// [`Error`](crate::Error) and classifies them. Its old variants (`Http`, `Transport`) are gone: use
/// [`CallError::downcast_ref`](crate::CallError::downcast_ref).
#[deprecated(note = "use `ratelimited::CallError`: it holds and classifies reqwest errors too")]
pub type CallError = crate::CallError;
