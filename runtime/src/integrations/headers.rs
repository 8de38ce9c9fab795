//! What the HTTP integrations read from a response's headers: the rate-limit headers, and all
//! of them as text for an `HttpError`.

use std::time::SystemTime;

#[cfg(feature = "reqwest")]
use ::reqwest::header::HeaderMap;
#[cfg(not(feature = "reqwest"))]
use http::HeaderMap;

use crate::answers::http::RateLimitHeaders;

/// The rate-limit headers (OpenAI/Azure `x-ratelimit-*`, Anthropic `anthropic-ratelimit-*`),
/// parsed as [`RateLimitHeaders::parse`] does, with Anthropic's reset instants measured from
/// the current wall-clock time.
pub(crate) fn rate_limit_headers(headers: &HeaderMap) -> RateLimitHeaders {
    let lookup = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    RateLimitHeaders::parse(&lookup, SystemTime::now())
}

/// Every header as a (name, value) pair of text (a value that is not UTF-8, lossily).
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}
