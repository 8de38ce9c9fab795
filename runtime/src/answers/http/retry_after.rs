//! How long a server asked to wait: `retry-after-ms`, `retry-after` (seconds or HTTP date),
//! Gemini's `RetryInfo` and the hints in error messages.
//!
//! A hint too large to represent is a very long wait, never "no hint": it saturates to
//! [`Duration::MAX`], so the retry policy refuses it with
//! [`Error::RetryAfterTooLong`](crate::Error::RetryAfterTooLong) instead of retrying at once.

use std::time::{Duration, SystemTime};

use super::body::ErrorBody;
use super::headers::{parse_go_duration, RateLimitHeaders};

/// The prefix a gateway puts on the headers it passes on from the provider behind it
/// (LiteLLM's proxy: `llm_provider-retry-after`), where that is the only hint.
const GATEWAY_PREFIX: &str = "llm_provider-";

/// How long the server asked to wait, from the headers and body of an error response.
///
/// Precedence, as the official OpenAI SDKs apply it: `retry-after-ms` (float milliseconds), then
/// `retry-after` as float seconds, then `retry-after` as an HTTP date (measured from `now`; a date
/// already past gives zero), then the same headers as a gateway passes them on from the
/// provider behind it (`llm_provider-retry-after-ms`, `llm_provider-retry-after`), then the
/// body: Gemini's `google.rpc.RetryInfo.retryDelay` (`"37s"`), then a hint in the message
/// ("Please try again in 1.146s", "try again in 84ms", "retry after 6 seconds", "Please retry
/// in 37.3s"), and last the rate-limit headers: a dimension with nothing `remaining` is full
/// again after its `reset` (the latest of them when several are spent). Only a response with
/// none of these is retried on the policy's own backoff.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::{Duration, SystemTime};
/// use ratelimited::http::retry_after_hint;
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

pub(crate) fn retry_after_from(
    header: &dyn Fn(&str) -> Option<String>,
    body: &ErrorBody,
    now: SystemTime,
) -> Option<Duration> {
    let prefixed = |name: &str| header(&format!("{GATEWAY_PREFIX}{name}"));
    standard_retry_after(header, now)
        .or_else(|| standard_retry_after(&prefixed, now))
        .or(body.retry_delay)
        .or_else(|| message_retry_hint(&body.message))
        .or_else(|| spent_until_reset(&RateLimitHeaders::parse(header, now)))
}

/// `retry-after-ms`, else `retry-after` (seconds or an HTTP date), as `header` gives them.
fn standard_retry_after(
    header: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = header("retry-after-ms").and_then(|v| non_negative_f64(&v)) {
        return Some(saturating_secs(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Some(secs) = non_negative_f64(&value) {
        return Some(saturating_secs(secs));
    }
    httpdate::parse_http_date(value.trim())
        .ok()
        .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The latest reset among the dimensions with nothing remaining: when the server has room
/// again on every dimension it has spent.
fn spent_until_reset(headers: &RateLimitHeaders) -> Option<Duration> {
    [
        (headers.remaining_requests, headers.reset_requests),
        (headers.remaining_tokens, headers.reset_tokens),
        (headers.remaining_input_tokens, headers.reset_input_tokens),
        (headers.remaining_output_tokens, headers.reset_output_tokens),
    ]
    .into_iter()
    .filter_map(|(remaining, reset)| reset.filter(|_| remaining == Some(0)))
    .max()
}

/// `secs` (finite, not negative) as a duration, [`Duration::MAX`] when it does not fit.
fn saturating_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
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
        return Some(saturating_secs(amount * unit_secs));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    fn no_headers(_: &str) -> Option<String> {
        None
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
    fn absurd_hints_saturate_instead_of_vanishing() {
        let hint = |name: &'static str, value: &'static str| {
            let header = move |n: &str| (n == name).then(|| value.to_owned());
            retry_after_hint(&header, "", SystemTime::UNIX_EPOCH)
        };
        assert_eq!(
            hint("retry-after", "99999999999999999999"),
            Some(Duration::MAX)
        );
        assert_eq!(hint("retry-after-ms", "1e300"), Some(Duration::MAX));
        assert_eq!(hint("retry-after", "1e300"), Some(Duration::MAX));
        assert_eq!(
            message_retry_hint("Please try again in 99999999999999999999999 hours."),
            Some(Duration::MAX)
        );
        assert_eq!(
            message_retry_hint("try again in 9999999999999999999999h"),
            Some(Duration::MAX)
        );
        // Garbage is still no hint.
        assert_eq!(hint("retry-after", "inf"), None);
        assert_eq!(hint("retry-after-ms", "-1"), None);
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_gateways_prefixed_retry_after_is_read_where_it_is_the_only_hint() {
        let now = SystemTime::UNIX_EPOCH;
        let only_prefixed = [("llm_provider-retry-after", "7")];
        assert_eq!(
            retry_after_hint(&headers(&only_prefixed), "", now),
            Some(Duration::from_secs(7))
        );
        let prefixed_ms = [("llm_provider-retry-after-ms", "250")];
        assert_eq!(retry_after_hint(&headers(&prefixed_ms), "", now), ms(250));
        // The standard header wins.
        let both = [("retry-after", "2"), ("llm_provider-retry-after", "7")];
        assert_eq!(
            retry_after_hint(&headers(&both), "", now),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn a_spent_dimension_waits_for_its_reset_when_nothing_else_says() {
        let now = SystemTime::UNIX_EPOCH;
        // Requests spent until the window turns in 42 s; tokens left.
        let spent = [
            ("x-ratelimit-limit-requests", "120"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "42s"),
            ("x-ratelimit-limit-tokens", "100000"),
            ("x-ratelimit-remaining-tokens", "5000"),
            ("x-ratelimit-reset-tokens", "55s"),
        ];
        assert_eq!(
            retry_after_hint(&headers(&spent), "", now),
            Some(Duration::from_secs(42))
        );
        // Both spent: the later reset.
        let both = [
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "42s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "1m5s"),
        ];
        assert_eq!(
            retry_after_hint(&headers(&both), "", now),
            Some(Duration::from_secs(65))
        );
        // Nothing spent, no hint: the retry policy's own backoff.
        let room = [
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "42s"),
        ];
        assert_eq!(retry_after_hint(&headers(&room), "", now), None);
        // A message hint still comes first.
        let message = r#"{"error": {"message": "Rate limit reached. Please try again in 3s."}}"#;
        assert_eq!(
            retry_after_hint(&headers(&spent), message, now),
            Some(Duration::from_secs(3))
        );
    }
}
