//! What the mock answers on success: [`MockResponse`], OpenAI's body with its headers.

use std::time::SystemTime;

use serde_json::Value;
use tokio::time::Instant;

use crate::answers::http::RateLimitHeaders;
use crate::answers::usage::ReportUsage;
use crate::units::cost::Usage;

/// A successful response: OpenAI's JSON body plus the headers it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct MockResponse {
    /// The model id from the request.
    pub model: String,
    /// Prompt (input) tokens, as in `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// Completion tokens over all choices, as in `usage.completion_tokens` (0 for embeddings).
    pub completion_tokens: u64,
    /// The part of `prompt_tokens` read from the prompt cache, as in
    /// `usage.prompt_tokens_details.cached_tokens` (0 without a prompt cache).
    pub cache_read_tokens: u64,
    /// The part of `prompt_tokens` written to the prompt cache, as in
    /// `usage.prompt_tokens_details.cache_write_tokens`.
    pub cache_write_tokens: u64,
    /// What admission charged against the tokens bucket.
    pub charged_tokens: u64,
    /// When the request was admitted (its arrival, before any latency).
    pub admitted_at: Instant,
    /// The response headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets
    /// as Go durations, counts as of the admission), `x-request-id`, and
    /// `openai-processing-ms` (the latency, from admission to answer).
    pub headers: Vec<(String, String)>,
    /// The OpenAI-shaped JSON body (`chat.completion` or an embeddings `list`) with its `usage`.
    pub body: Value,
}

impl MockResponse {
    /// The first value of header `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `x-ratelimit-*` headers, parsed.
    pub fn rate_limit_headers(&self) -> RateLimitHeaders {
        RateLimitHeaders::from_pairs(
            self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SystemTime::now(),
        )
    }
}

/// `prompt_tokens` in (with its cache reads and writes), `completion_tokens` out: the same as
/// the body's `usage`.
impl ReportUsage for MockResponse {
    fn usage(&self) -> Option<Usage> {
        Some(
            Usage::new(self.prompt_tokens, self.completion_tokens)
                .with_cache_reads(self.cache_read_tokens)
                .with_cache_writes(self.cache_write_tokens),
        )
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        Some(MockResponse::rate_limit_headers(self))
    }
}
