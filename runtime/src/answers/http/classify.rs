//! Classifying a failed HTTP response: the provider rules behind [`classify_http`], and
//! [`HttpError`], an owned response that applies them.

use std::fmt;
use std::time::SystemTime;

use super::body::ErrorBody;
use super::headers::RateLimitHeaders;
use super::retry_after::retry_after_from;
use crate::answers::classify::{Classify, Verdict};

/// A failed HTTP response, owned: status, headers and body text.
///
/// The simplest error type to classify: build one from any client's response and
/// [`Classify::classify`] applies [`classify_http`] with the current wall-clock time (only
/// HTTP-date `Retry-After` values need it; [`HttpError::classify_at`] takes it explicitly).
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{http::HttpError, Classify, Verdict};
///
/// let err = HttpError::new(
///     429,
///     [("retry-after-ms", "840")],
///     r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
/// );
/// assert_eq!(err.classify().retry_after(), Some(std::time::Duration::from_millis(840)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers as `(name, value)` pairs; names match case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The response body as text.
    pub body: String,
}

impl HttpError {
    /// An error from a status, any `(name, value)` header pairs and the body text.
    pub fn new<K, V>(
        status: u16,
        headers: impl IntoIterator<Item = (K, V)>,
        body: impl Into<String>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        HttpError {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            body: body.into(),
        }
    }

    /// The first value of header `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Classifies with an explicit "now" for HTTP-date `Retry-After` values.
    pub fn classify_at(&self, now: SystemTime) -> Verdict {
        classify_http(self.status, &self.lookup(), &self.body, now)
    }

    /// The rate-limit headers this response carried (see [`RateLimitHeaders`]).
    pub fn rate_limit_headers(&self, now: SystemTime) -> RateLimitHeaders {
        RateLimitHeaders::parse(&self.lookup(), now)
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.header(name).map(str::to_owned)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = ErrorBody::parse(&self.body);
        let text = body.message.trim();
        const MAX: usize = 300;
        if text.is_empty() {
            write!(f, "HTTP {}", self.status)
        } else if text.len() > MAX {
            let cut = (0..=MAX)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            write!(f, "HTTP {}: {}...", self.status, &text[..cut])
        } else {
            write!(f, "HTTP {}: {}", self.status, text)
        }
    }
}

impl std::error::Error for HttpError {}

impl Classify for HttpError {
    fn classify(&self) -> Verdict {
        self.classify_at(SystemTime::now())
    }

    fn to_error_source(&self) -> Option<Box<dyn std::error::Error + Send + Sync + 'static>> {
        Some(Box::new(self.clone()))
    }
}

/// Classifies an HTTP error response from any supported provider.
///
/// `header` looks a header up by its lower-case name; `now` is the instant an HTTP-date
/// `Retry-After` is measured from (the function never reads the clock itself).
///
/// Rules, first match wins:
/// 1. Never retried, whatever the status: an OpenAI `insufficient_quota` (`code` or `type`), an
///    Anthropic spend cap (`enforced_spend_limit_reached` anywhere in the body, or a
///    `rate_limit_error` that mentions spend and has no `retry-after`), an Anthropic "reached
///    your specified API usage limits", or a Gemini `RESOURCE_EXHAUSTED` whose
///    `QuotaFailure.violations[].quotaId` contains `PerDay` → [`Verdict::QuotaExhausted`].
/// 2. HTTP 413, an Anthropic `request_too_large`, a message starting "Request too large", or a
///    tokens-per-minute 429 that has `Requested` but no `Used` (the request alone is over the
///    limit) → [`Verdict::RequestTooLarge`].
/// 3. `x-should-retry: false` → [`Verdict::Fatal`].
/// 4. 429 → [`Verdict::RateLimited`]; 408, 409, every 5xx (529 overloaded included) or an
///    Anthropic `overloaded_error` → [`Verdict::Transient`]; both with [`retry_after_hint`](super::retry_after_hint).
/// 5. `x-should-retry: true` → [`Verdict::Transient`]; anything else → [`Verdict::Fatal`].
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::{Duration, SystemTime};
/// use ratelimited::{http::classify_http, Verdict};
///
/// let body = concat!(
///     r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on "#,
///     r#"tokens per min (TPM): Limit 200000, Used 195869, Requested 4412. "#,
///     r#"Please try again in 84ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
/// );
/// let verdict = classify_http(429, &|_| None, body, SystemTime::UNIX_EPOCH);
/// assert_eq!(verdict, Verdict::RateLimited { retry_after: Some(Duration::from_millis(84)) });
/// ```
pub fn classify_http(
    status: u16,
    header: &dyn Fn(&str) -> Option<String>,
    body: &str,
    now: SystemTime,
) -> Verdict {
    let parsed = ErrorBody::parse(body);
    let message = || {
        let m = parsed.message.trim();
        if m.is_empty() {
            format!("HTTP {status}")
        } else {
            m.to_owned()
        }
    };
    let has_retry_after_header =
        header("retry-after-ms").is_some() || header("retry-after").is_some();

    if parsed.is_quota_exhausted(has_retry_after_header) {
        return Verdict::QuotaExhausted { message: message() };
    }
    if status == 413 || parsed.is_too_large(status) {
        return Verdict::RequestTooLarge { message: message() };
    }
    let should_retry = header("x-should-retry").map(|v| v.trim().to_ascii_lowercase());
    if should_retry.as_deref() == Some("false") {
        return Verdict::Fatal;
    }
    let retry_after = || retry_after_from(header, &parsed, now);
    match status {
        429 => Verdict::RateLimited {
            retry_after: retry_after(),
        },
        408 | 409 | 500..=599 => Verdict::Transient {
            retry_after: retry_after(),
        },
        _ if parsed.kind.as_deref() == Some("overloaded_error") => Verdict::Transient {
            retry_after: retry_after(),
        },
        _ if should_retry.as_deref() == Some("true") => Verdict::Transient {
            retry_after: retry_after(),
        },
        _ => Verdict::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    fn verdict(status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
        HttpError::new(status, headers.iter().copied(), body).classify_at(NOW)
    }

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    const OPENAI_TPM: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc123 on tokens per min (TPM): Limit 200000, Used 195869, Requested 4412. Please try again in 84ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    const OPENAI_RPM: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc123 on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1.146s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    const OPENAI_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    const OPENAI_TOO_LARGE: &str = r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc123 on tokens per min (TPM): Limit 30000, Requested 34307. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    const ANTHROPIC_RATE: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 30,000 input tokens per minute."}}"#;
    const ANTHROPIC_SPEND: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Your organization has reached its monthly spend limit.","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
    const ANTHROPIC_OVERLOADED: &str =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    const GEMINI_PER_DAY: &str = r#"{
      "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50, model: gemini-2.0-flash\nPlease retry in 37.347734553s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
          {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
           "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                           "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                           "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                           "quotaValue": "50"}]},
          {"@type": "type.googleapis.com/google.rpc.Help",
           "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
        ]
      }
    }"#;

    fn gemini_per_minute() -> String {
        GEMINI_PER_DAY.replace("PerDay", "PerMinute")
    }

    #[test]
    fn openai_rate_limit_uses_message_hint() {
        assert_eq!(
            verdict(429, &[], OPENAI_TPM),
            Verdict::RateLimited {
                retry_after: ms(84)
            }
        );
        assert_eq!(
            verdict(429, &[], OPENAI_RPM),
            Verdict::RateLimited {
                retry_after: ms(1146)
            }
        );
    }

    #[test]
    fn openai_insufficient_quota_is_never_retried() {
        let v = verdict(429, &[("retry-after", "1")], OPENAI_QUOTA);
        assert!(
            matches!(&v, Verdict::QuotaExhausted { message } if message.starts_with("You exceeded your current quota"))
        );
        assert!(!v.is_retryable());
    }

    #[test]
    fn openai_request_too_large() {
        let v = verdict(429, &[], OPENAI_TOO_LARGE);
        assert!(
            matches!(&v, Verdict::RequestTooLarge { message } if message.contains("Requested 34307"))
        );
        // Same shape, different wording: a TPM 429 with no "Used" is still too large.
        let reworded = OPENAI_TOO_LARGE.replace("Request too large for", "Limit exceeded for");
        assert!(matches!(
            verdict(429, &[], &reworded),
            Verdict::RequestTooLarge { .. }
        ));
        assert!(matches!(
            verdict(413, &[], "payload too big"),
            Verdict::RequestTooLarge { .. }
        ));
        let anthropic_413 = r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#;
        assert!(matches!(
            verdict(413, &[], anthropic_413),
            Verdict::RequestTooLarge { .. }
        ));
    }

    #[test]
    fn anthropic_rate_limit_and_spend_cap() {
        assert_eq!(
            verdict(429, &[("retry-after", "12")], ANTHROPIC_RATE),
            Verdict::RateLimited {
                retry_after: Some(Duration::from_secs(12))
            }
        );
        assert!(matches!(
            verdict(429, &[], ANTHROPIC_SPEND),
            Verdict::QuotaExhausted { message } if message.contains("spend limit")
        ));
        // Without the error code: a rate_limit_error that mentions spend and has no retry-after.
        let no_code = r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have exceeded your workspace spend limit."}}"#;
        assert!(matches!(
            verdict(429, &[], no_code),
            Verdict::QuotaExhausted { .. }
        ));
        assert!(matches!(
            verdict(429, &[("retry-after", "5")], no_code),
            Verdict::RateLimited { .. }
        ));
        let usage_limits = r#"{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}"#;
        assert!(matches!(
            verdict(400, &[], usage_limits),
            Verdict::QuotaExhausted { .. }
        ));
    }

    #[test]
    fn gemini_per_day_is_quota_per_minute_retries_after_retry_info() {
        assert!(matches!(
            verdict(429, &[], GEMINI_PER_DAY),
            Verdict::QuotaExhausted { message } if message.contains("limit: 50")
        ));
        assert_eq!(
            verdict(429, &[], &gemini_per_minute()),
            Verdict::RateLimited {
                retry_after: Some(Duration::from_secs(37))
            },
            "RetryInfo wins over the message's 37.3s"
        );
        // Sometimes wrapped in an array.
        let wrapped = format!("[{}]", gemini_per_minute());
        assert_eq!(
            verdict(429, &[], &wrapped).retry_after(),
            Some(Duration::from_secs(37))
        );
    }

    #[test]
    fn transient_and_fatal_statuses() {
        assert_eq!(
            verdict(529, &[], ANTHROPIC_OVERLOADED),
            Verdict::Transient { retry_after: None }
        );
        assert_eq!(
            verdict(503, &[("retry-after", "3")], "Service Unavailable"),
            Verdict::Transient {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        for status in [408, 409, 500, 502, 504] {
            assert!(verdict(status, &[], "").is_retryable(), "{status}");
        }
        let bad_request = r#"{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","param":"messages","code":"empty_array"}}"#;
        assert_eq!(verdict(400, &[], bad_request), Verdict::Fatal);
        assert_eq!(verdict(401, &[], "unauthorized"), Verdict::Fatal);
        assert_eq!(verdict(404, &[], ""), Verdict::Fatal);
    }

    #[test]
    fn x_should_retry_overrides_status() {
        assert_eq!(
            verdict(429, &[("x-should-retry", "false")], OPENAI_TPM),
            Verdict::Fatal
        );
        assert_eq!(
            verdict(503, &[("X-Should-Retry", "False")], ""),
            Verdict::Fatal
        );
        assert_eq!(
            verdict(400, &[("x-should-retry", "true"), ("retry-after", "2")], ""),
            Verdict::Transient {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        // It never turns a quota error into a retry.
        assert!(matches!(
            verdict(429, &[("x-should-retry", "true")], OPENAI_QUOTA),
            Verdict::QuotaExhausted { .. }
        ));
    }

    #[test]
    fn retry_after_precedence_ms_then_seconds_then_date_then_message() {
        let date = "Thu, 01 Jan 1970 00:00:30 GMT";
        let all = [("retry-after-ms", "250.5"), ("retry-after", "7")];
        let hint = |headers: &[(&str, &str)], body: &str| verdict(429, headers, body).retry_after();
        assert_eq!(hint(&all, OPENAI_TPM), Some(Duration::from_micros(250_500)));
        assert_eq!(hint(&all[1..], OPENAI_TPM), Some(Duration::from_secs(7)));
        assert_eq!(
            hint(&[("retry-after", "1.5")], OPENAI_TPM),
            ms(1500),
            "float seconds"
        );
        assert_eq!(
            hint(&[("retry-after", date)], OPENAI_TPM),
            Some(Duration::from_secs(30))
        );
        assert_eq!(hint(&[], OPENAI_TPM), ms(84));
        assert_eq!(hint(&[], "{}"), None);
        // Garbage headers fall through to the next source.
        assert_eq!(
            hint(
                &[("retry-after-ms", "soon"), ("retry-after", "-3")],
                OPENAI_TPM
            ),
            ms(84)
        );
    }

    #[test]
    fn http_error_display_and_headers() {
        let err = HttpError::new(
            429,
            [
                ("X-RateLimit-Remaining-Tokens", "0"),
                ("x-ratelimit-limit-tokens", "30000"),
            ],
            OPENAI_TPM,
        );
        assert!(err
            .to_string()
            .starts_with("HTTP 429: Rate limit reached for gpt-4o-mini"));
        assert_eq!(err.header("x-ratelimit-remaining-tokens"), Some("0"));
        let headers = err.rate_limit_headers(NOW);
        assert_eq!(headers.remaining_tokens, Some(0));
        assert_eq!(headers.limit_tokens, Some(30_000));
        assert_eq!(
            HttpError::new(502, Vec::<(String, String)>::new(), "").to_string(),
            "HTTP 502"
        );
        let long = HttpError::new(500, Vec::<(String, String)>::new(), "é".repeat(400));
        assert!(long.to_string().ends_with("..."));
    }
}
