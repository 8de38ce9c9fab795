//! What the examples share: a minimal OpenAI-compatible chat client over reqwest and its error
//! type, wired to `ratelimited` the way an application would do it.

mod api_error;

pub use api_error::ApiError;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use ratelimited::http::WithHeaders;
use ratelimited::http::{HttpError, RateLimitHeaders};
use serde_json::Value;

/// `POST {base}/chat/completions`, counting the responses and the 429s among them.
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    pub responses: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl ChatClient {
    /// A client for the OpenAI-compatible API at `base_url` (ending in `/v1`).
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<String>) -> Self {
        ChatClient {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            responses: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// One chat call. The body and the rate-limit headers travel together, so the limiter can
    /// settle to the usage and stay in step with the server's own count.
    pub async fn chat(&self, request: &Value) -> Result<WithHeaders<Value>, ApiError> {
        let transport = |e: reqwest::Error| ApiError::Transport(e.to_string());
        let mut post = self.http.post(&self.url).json(request);
        if let Some(key) = &self.api_key {
            post = post.bearer_auth(key);
        }
        let response = post.send().await.map_err(transport)?;
        self.responses.fetch_add(1, Ordering::Relaxed);
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let text = response.text().await.map_err(transport)?;
        if status != 200 {
            if status == 429 {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            return Err(ApiError::Http(HttpError::new(status, headers, text)));
        }
        let rate_limits = RateLimitHeaders::from_pairs(
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SystemTime::now(),
        );
        let body = serde_json::from_str(&text).map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(WithHeaders {
            body,
            headers: rate_limits,
        })
    }
}
