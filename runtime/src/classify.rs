//! Error classification: is a failed call worth retrying, and after how long?
//!
//! [`classify_http`] is the shared core (status + headers + body, with an injected "now");
//! [`HttpError`] is a plain owned HTTP error that uses it, and client integrations reuse it too.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::Error;
use crate::headers::{parse_go_duration, RateLimitHeaders};

/// What a failed call means for retrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The provider's rate limit was hit (HTTP 429): wait and retry. `retry_after` is the wait
    /// the server asked for, when it said.
    RateLimited {
        /// The server's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Out of credit or quota (`insufficient_quota`, a spend cap, a per-day quota): retrying
    /// cannot help, so it never is.
    QuotaExhausted {
        /// What the provider said.
        message: String,
    },
    /// The request alone exceeds a limit ("Request too large", HTTP 413): it can never succeed.
    TooLarge {
        /// What the provider said.
        message: String,
    },
    /// A temporary failure (5xx, 529 overloaded, 408, 409, a reset connection): retry with
    /// backoff, without treating it as a rate-limit signal.
    Transient {
        /// The server's requested wait, if any.
        retry_after: Option<Duration>,
    },
    /// Anything else (a bad request, bad credentials): returned to the caller at once.
    Fatal,
}

impl Verdict {
    /// True for [`Verdict::RateLimited`] and [`Verdict::Transient`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Verdict::RateLimited { .. } | Verdict::Transient { .. }
        )
    }

    /// The server's requested wait, for the retryable verdicts that carry one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Verdict::RateLimited { retry_after } | Verdict::Transient { retry_after } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// How an error type tells the limiter whether to retry.
///
/// Implemented for [`HttpError`], [`std::io::Error`], the library's own [`Error`], [`Verdict`]
/// itself and references, boxes and `Arc`s of those. For your own error type, map it onto a
/// [`Verdict`]; when it wraps an HTTP response, [`classify_http`] does the provider-specific
/// work:
///
/// ```
/// use std::time::SystemTime;
/// use ratelimited_runtime::{classify_http, Classify, Verdict};
///
/// enum ApiError {
///     Http { status: u16, retry_after: Option<String>, body: String },
///     Decode(String),
/// }
///
/// impl Classify for ApiError {
///     fn classify(&self) -> Verdict {
///         match self {
///             ApiError::Http { status, retry_after, body } => {
///                 let header = |name: &str| match name {
///                     "retry-after" => retry_after.clone(),
///                     _ => None,
///                 };
///                 classify_http(*status, &header, body, SystemTime::now())
///             }
///             ApiError::Decode(_) => Verdict::Fatal,
///         }
///     }
/// }
///
/// let err = ApiError::Http { status: 429, retry_after: Some("2".into()), body: String::new() };
/// assert_eq!(err.classify(), Verdict::RateLimited { retry_after: Some(std::time::Duration::from_secs(2)) });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say whether it is a rate-limit error",
    label = "this error type cannot be classified for retrying",
    note = "implement `ratelimited::Classify` for it: map each error onto a `ratelimited::Verdict` \
            (`RateLimited` for 429s, `Transient` for 5xx, `Fatal` otherwise), or hand its HTTP \
            status, headers and body to `ratelimited::classify_http`",
    note = "for an error type from another crate (`Box<dyn Error + Send + Sync>`, a client's \
            error) the orphan rule forbids that impl: return `ratelimited::CallError` instead, \
            which classifies the errors it holds that the library knows (`HttpError`, \
            `std::io::Error`, client errors), or wrap the error in a newtype of your own \
            (`struct MyError(..)`) and implement `Classify` for that"
)]
pub trait Classify {
    /// What this error means for retrying the call.
    fn classify(&self) -> Verdict;
}

impl Classify for Verdict {
    fn classify(&self) -> Verdict {
        self.clone()
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
}

impl<T: Classify + ?Sized> Classify for Arc<T> {
    fn classify(&self) -> Verdict {
        (**self).classify()
    }
}

/// The library's own errors, so a function whose error type is [`Error`] (or that nests another
/// rate-limited function) classifies without extra code.
impl Classify for Error {
    fn classify(&self) -> Verdict {
        match self {
            Error::RequestTooLarge { .. } => Verdict::TooLarge {
                message: self.to_string(),
            },
            Error::QuotaExhausted { message } => Verdict::QuotaExhausted {
                message: message.clone(),
            },
            // The shared store may come back; the retry budget bounds the attempts.
            Error::BackendUnavailable { .. } => Verdict::Transient { retry_after: None },
            // Already the outcome of a retry decision, or a configuration mistake.
            Error::RetryAfterTooLong { .. }
            | Error::RetriesExhausted { .. }
            | Error::Config { .. }
            | Error::UnknownModel { .. } => Verdict::Fatal,
            #[allow(unreachable_patterns)]
            _ => Verdict::Fatal,
        }
    }
}

/// Connection-level failures (reset, aborted, refused, timed out, broken pipe, early EOF) are
/// transient; every other I/O error is fatal.
impl Classify for std::io::Error {
    fn classify(&self) -> Verdict {
        use std::io::ErrorKind::*;
        match self.kind() {
            ConnectionReset | ConnectionAborted | ConnectionRefused | NotConnected | BrokenPipe
            | TimedOut | UnexpectedEof | Interrupted | WouldBlock => {
                Verdict::Transient { retry_after: None }
            }
            _ => Verdict::Fatal,
        }
    }
}

/// A failed HTTP response, owned: status, headers and body text.
///
/// The simplest error type to classify: build one from any client's response and
/// [`Classify::classify`] applies [`classify_http`] with the current wall-clock time (only
/// HTTP-date `Retry-After` values need it; [`HttpError::classify_at`] takes it explicitly).
///
/// ```
/// use ratelimited_runtime::{Classify, HttpError, Verdict};
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
///    limit) → [`Verdict::TooLarge`].
/// 3. `x-should-retry: false` → [`Verdict::Fatal`].
/// 4. 429 → [`Verdict::RateLimited`]; 408, 409, every 5xx (529 overloaded included) or an
///    Anthropic `overloaded_error` → [`Verdict::Transient`]; both with [`retry_after_hint`].
/// 5. `x-should-retry: true` → [`Verdict::Transient`]; anything else → [`Verdict::Fatal`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratelimited_runtime::{classify_http, Verdict};
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
        return Verdict::TooLarge { message: message() };
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

/// How long the server asked to wait, from the headers and body of an error response.
///
/// Precedence, as the official OpenAI SDKs apply it: `retry-after-ms` (float milliseconds), then
/// `retry-after` as float seconds, then `retry-after` as an HTTP date (measured from `now`; a date
/// already past gives zero), then the body: Gemini's `google.rpc.RetryInfo.retryDelay` (`"37s"`),
/// then a hint in the message ("Please try again in 1.146s", "try again in 84ms", "retry after
/// 6 seconds", "Please retry in 37.3s").
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratelimited_runtime::retry_after_hint;
///
/// let header = |name: &str| (name == "retry-after").then(|| "1.5".to_owned());
/// assert_eq!(
///     retry_after_hint(&header, "", SystemTime::UNIX_EPOCH),
///     Some(Duration::from_millis(1500))
/// );
/// ```
pub fn retry_after_hint(
    header: &dyn Fn(&str) -> Option<String>,
    body: &str,
    now: SystemTime,
) -> Option<Duration> {
    retry_after_from(header, &ErrorBody::parse(body), now)
}

fn retry_after_from(
    header: &dyn Fn(&str) -> Option<String>,
    body: &ErrorBody,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = header("retry-after-ms").and_then(|v| non_negative_f64(&v)) {
        if let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0) {
            return Some(d);
        }
    }
    if let Some(value) = header("retry-after") {
        if let Some(secs) = non_negative_f64(&value) {
            if let Ok(d) = Duration::try_from_secs_f64(secs) {
                return Some(d);
            }
        }
        if let Ok(at) = httpdate::parse_http_date(value.trim()) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    body.retry_delay
        .or_else(|| message_retry_hint(&body.message))
}

fn non_negative_f64(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Punctuation that may follow a duration in a message: `in 84ms.`, `in 20s,`, `in 1s")`.
const HINT_TRAILING: &[char] = &['.', ',', ';', ':', ')', ']', '}', '!', '"', '\''];

/// The wait hinted at in a human-readable error message, if any.
fn message_retry_hint(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    for phrase in [
        "try again in ",
        "try again after ",
        "retry in ",
        "retry after ",
    ] {
        let Some(at) = lower.find(phrase) else {
            continue;
        };
        let rest = &lower[at + phrase.len()..];
        let mut words = rest.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        let first = first.trim_end_matches(HINT_TRAILING);
        if let Some(d) = parse_go_duration(first) {
            return Some(d);
        }
        // "6 seconds", "500 ms", "2 minutes".
        let Some(amount) = non_negative_f64(first) else {
            continue;
        };
        let unit = words.next().map(|w| w.trim_end_matches(HINT_TRAILING));
        let unit_secs = match unit {
            Some("ms" | "msec" | "millisecond" | "milliseconds") => 0.001,
            Some("s" | "sec" | "secs" | "second" | "seconds") => 1.0,
            Some("m" | "min" | "mins" | "minute" | "minutes") => 60.0,
            Some("h" | "hour" | "hours") => 3600.0,
            _ => continue,
        };
        if let Ok(d) = Duration::try_from_secs_f64(amount * unit_secs) {
            return Some(d);
        }
    }
    None
}

/// The fields of a provider error body that matter for classification.
///
/// OpenAI: `{"error":{"message","type","param","code"}}`; Anthropic:
/// `{"type":"error","error":{"type","message"}}`; Gemini:
/// `{"error":{"code":429,"message","status":"RESOURCE_EXHAUSTED","details":[..]}}`, sometimes
/// wrapped in an array. A body that is not JSON is kept as the message.
#[derive(Debug, Default)]
struct ErrorBody {
    /// OpenAI `error.code` when it is a string (`rate_limit_exceeded`, `insufficient_quota`).
    code: Option<String>,
    /// OpenAI or Anthropic `error.type`.
    kind: Option<String>,
    /// Gemini `error.status`.
    status: Option<String>,
    /// The human-readable message (or the whole body when it is not JSON).
    message: String,
    /// Gemini `QuotaFailure.violations[].quotaId`.
    quota_ids: Vec<String>,
    /// Gemini `RetryInfo.retryDelay`.
    retry_delay: Option<Duration>,
    /// The body mentions Anthropic's spend-cap error code.
    spend_limit_code: bool,
}

impl ErrorBody {
    fn parse(body: &str) -> ErrorBody {
        let mut out = ErrorBody {
            spend_limit_code: body.contains("enforced_spend_limit_reached"),
            ..ErrorBody::default()
        };
        let Ok(mut value) = serde_json::from_str::<Value>(body) else {
            out.message = body.to_owned();
            return out;
        };
        if let Value::Array(items) = value {
            value = items.into_iter().next().unwrap_or(Value::Null);
        }
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        match value.get("error") {
            Some(err @ Value::Object(_)) => {
                out.code = text(err, "code");
                out.kind = text(err, "type");
                out.status = text(err, "status");
                out.message = text(err, "message").unwrap_or_default();
                for detail in err
                    .get("details")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
                    if kind.ends_with("google.rpc.QuotaFailure") {
                        out.quota_ids.extend(
                            detail
                                .get("violations")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|v| text(v, "quotaId")),
                        );
                    } else if kind.ends_with("google.rpc.RetryInfo") {
                        out.retry_delay = detail
                            .get("retryDelay")
                            .and_then(Value::as_str)
                            .and_then(|d| parse_go_duration(d.trim()));
                    }
                }
            }
            Some(Value::String(message)) => out.message = message.clone(),
            _ => out.message = text(&value, "message").unwrap_or_else(|| body.to_owned()),
        }
        out
    }

    fn is_quota_exhausted(&self, has_retry_after_header: bool) -> bool {
        let message = self.message.to_ascii_lowercase();
        let insufficient_quota = self.code.as_deref() == Some("insufficient_quota")
            || self.kind.as_deref() == Some("insufficient_quota");
        let anthropic_spend_cap = self.spend_limit_code
            || (self.kind.as_deref() == Some("rate_limit_error")
                && !has_retry_after_header
                && message.contains("spend"))
            || message.contains("reached your specified api usage limits");
        let gemini_per_day = self.status.as_deref() == Some("RESOURCE_EXHAUSTED")
            && self
                .quota_ids
                .iter()
                .any(|id| id.to_ascii_lowercase().contains("perday"));
        insufficient_quota || anthropic_spend_cap || gemini_per_day
    }

    fn is_too_large(&self, status: u16) -> bool {
        let message = self.message.trim_start();
        if self.kind.as_deref() == Some("request_too_large")
            || message
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("request too large"))
        {
            return true;
        }
        // OpenAI's TPM 429 says "Limit L, Used U, Requested R"; without "Used" it is the
        // request alone that is over the limit.
        let tokens_limit = self.kind.as_deref() == Some("tokens")
            || message.contains("tokens per min")
            || message.contains("(TPM)");
        status == 429 && tokens_limit && message.contains("Requested") && !message.contains("Used")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    fn no_headers(_: &str) -> Option<String> {
        None
    }

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
        assert!(matches!(&v, Verdict::TooLarge { message } if message.contains("Requested 34307")));
        // Same shape, different wording: a TPM 429 with no "Used" is still too large.
        let reworded = OPENAI_TOO_LARGE.replace("Request too large for", "Limit exceeded for");
        assert!(matches!(
            verdict(429, &[], &reworded),
            Verdict::TooLarge { .. }
        ));
        assert!(matches!(
            verdict(413, &[], "payload too big"),
            Verdict::TooLarge { .. }
        ));
        let anthropic_413 = r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#;
        assert!(matches!(
            verdict(413, &[], anthropic_413),
            Verdict::TooLarge { .. }
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
    fn http_date_is_relative_to_injected_now() {
        let header = |name: &str| {
            (name == "retry-after").then(|| "Wed, 21 Oct 2015 07:28:00 GMT".to_owned())
        };
        let at = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let now = at - Duration::from_secs(90);
        assert_eq!(
            retry_after_hint(&header, "", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after_hint(&header, "", at + Duration::from_secs(5)),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
        assert_eq!(retry_after_hint(&no_headers, "", now), None);
    }

    #[test]
    fn message_hints() {
        let cases = [
            ("Please try again in 1.146s.", ms(1146)),
            ("try again in 84ms", ms(84)),
            ("Please try again in 6m0s.", Some(Duration::from_secs(360))),
            (
                "Please try again in 20s, thanks",
                Some(Duration::from_secs(20)),
            ),
            (
                "Please retry after 6 seconds.",
                Some(Duration::from_secs(6)),
            ),
            (
                "Please retry in 37.347734553s.",
                Some(Duration::new(37, 347_734_553)),
            ),
            ("Try again in 2 minutes", Some(Duration::from_secs(120))),
            (r#"not json: "Please try again in 84ms."}"#, ms(84)),
            ("try again later", None),
            ("", None),
        ];
        for (message, expected) in cases {
            assert_eq!(message_retry_hint(message), expected, "{message:?}");
        }
    }

    #[test]
    fn library_errors_classify() {
        use crate::quota::Dimension;
        let too_large = Error::RequestTooLarge {
            dimension: Dimension::TokensPerMinute,
            requested: 40_000,
            capacity: 27_000,
        };
        assert!(matches!(too_large.classify(), Verdict::TooLarge { .. }));
        let quota = Error::QuotaExhausted {
            message: "out of credit".into(),
        };
        assert_eq!(
            quota.classify(),
            Verdict::QuotaExhausted {
                message: "out of credit".into()
            }
        );
        let spent = Error::RetriesExhausted {
            attempts: 7,
            last_error: "429".into(),
        };
        assert_eq!(spent.classify(), Verdict::Fatal);
        assert!(Error::BackendUnavailable {
            message: "redis down".into()
        }
        .classify()
        .is_retryable());
        // Through references and boxes.
        fn through<C: Classify>(error: C) -> Verdict {
            error.classify()
        }
        let boxed: Box<Error> = Box::new(quota.clone());
        assert_eq!(through(&boxed), quota.classify());
        assert_eq!(through(Arc::new(boxed)), quota.classify());
    }

    #[test]
    fn io_errors_classify() {
        use std::io::{Error as IoError, ErrorKind};
        assert!(IoError::from(ErrorKind::ConnectionReset)
            .classify()
            .is_retryable());
        assert!(IoError::from(ErrorKind::TimedOut).classify().is_retryable());
        assert_eq!(
            IoError::from(ErrorKind::PermissionDenied).classify(),
            Verdict::Fatal
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
