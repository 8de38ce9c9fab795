//! Rate-limit feedback headers: OpenAI/Azure `x-ratelimit-*` and Anthropic
//! `anthropic-ratelimit-*`, parsed into one provider-neutral [`RateLimitHeaders`].
//!
//! Parsing only: what the limiter does with the numbers lives elsewhere. Every time in here is
//! relative to a `now` the caller passes in, so nothing reads the wall clock and tests are exact.

use std::time::{Duration, SystemTime};

/// What a response's rate-limit headers say about the limits in force.
///
/// Built by [`RateLimitHeaders::parse`] from either header family:
///
/// | field | OpenAI / Azure | Anthropic |
/// |---|---|---|
/// | `*_requests` | `x-ratelimit-{limit,remaining,reset}-requests` | `anthropic-ratelimit-requests-{limit,remaining,reset}` |
/// | `*_tokens` | `x-ratelimit-{limit,remaining,reset}-tokens` | `anthropic-ratelimit-tokens-{limit,remaining,reset}` |
/// | `*_input_tokens` | – | `anthropic-ratelimit-input-tokens-{limit,remaining,reset}` |
/// | `*_output_tokens` | – | `anthropic-ratelimit-output-tokens-{limit,remaining,reset}` |
///
/// Resets are the time until the bucket is full again: OpenAI sends Go durations (`6m0s`, Go's
/// `time.ParseDuration` syntax), Anthropic sends RFC 3339 instants (turned into a duration from
/// `now`; an instant already past gives zero).
///
/// Sentinels are dropped rather than believed (Azure's Responses API has sent `-1` limits with
/// `reset: 0`): a limit of `0` or below discards that whole dimension (limit, remaining and
/// reset), and so does a negative remaining count without a limit. Under a real limit, a
/// negative remaining count (a gateway whose key another application overran) reads as `0`, an
/// empty bucket, and a `0` is kept: it is the most useful number there is. Unparsable values are
/// ignored, never errors: headers are advice.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::{Duration, SystemTime};
/// use ratelimited::http::RateLimitHeaders;
///
/// let headers = [
///     ("x-ratelimit-limit-tokens", "150000"),
///     ("x-ratelimit-remaining-tokens", "149984"),
///     ("x-ratelimit-reset-tokens", "6m0s"),
/// ];
/// let parsed = RateLimitHeaders::from_pairs(headers, SystemTime::UNIX_EPOCH);
/// assert_eq!(parsed.limit_tokens, Some(150_000));
/// assert_eq!(parsed.reset_tokens, Some(Duration::from_secs(360)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitHeaders {
    /// Requests allowed per window.
    pub limit_requests: Option<u64>,
    /// Requests left in the current window.
    pub remaining_requests: Option<u64>,
    /// Time until the request bucket is full again.
    pub reset_requests: Option<Duration>,
    /// Tokens allowed per window (input plus output; for Anthropic, whatever its combined
    /// `tokens-*` headers report).
    pub limit_tokens: Option<u64>,
    /// Tokens left in the current window.
    pub remaining_tokens: Option<u64>,
    /// Time until the token bucket is full again.
    pub reset_tokens: Option<Duration>,
    /// Input tokens allowed per window (Anthropic ITPM).
    pub limit_input_tokens: Option<u64>,
    /// Input tokens left in the current window.
    pub remaining_input_tokens: Option<u64>,
    /// Time until the input-token bucket is full again.
    pub reset_input_tokens: Option<Duration>,
    /// Output tokens allowed per window (Anthropic OTPM).
    pub limit_output_tokens: Option<u64>,
    /// Output tokens left in the current window.
    pub remaining_output_tokens: Option<u64>,
    /// Time until the output-token bucket is full again.
    pub reset_output_tokens: Option<Duration>,
    /// How long the server spent on the request (OpenAI's and Azure's `openai-processing-ms`):
    /// the rest of the round trip was on the wire, which bounds when the server counted it.
    pub processing: Option<Duration>,
}

/// One dimension's limit, remaining count and reset, before they are stored.
type Triple = (Option<u64>, Option<u64>, Option<Duration>);

impl RateLimitHeaders {
    /// Parses the headers `header` can look up (by lower-case name), with `now` as the instant
    /// Anthropic's RFC 3339 resets are measured from.
    ///
    /// OpenAI-style headers win when a response somehow carries both families.
    pub fn parse(header: &dyn Fn(&str) -> Option<String>, now: SystemTime) -> Self {
        let openai = |dim: &str| {
            read_triple(
                header(&format!("x-ratelimit-limit-{dim}")),
                header(&format!("x-ratelimit-remaining-{dim}")),
                header(&format!("x-ratelimit-reset-{dim}")).and_then(|v| parse_reset_duration(&v)),
            )
        };
        let anthropic = |dim: &str| {
            read_triple(
                header(&format!("anthropic-ratelimit-{dim}-limit")),
                header(&format!("anthropic-ratelimit-{dim}-remaining")),
                header(&format!("anthropic-ratelimit-{dim}-reset"))
                    .and_then(|v| parse_reset_instant(&v, now)),
            )
        };
        // The first family that says anything about the dimension.
        let either = |first: Triple, second| match first {
            (None, None, None) => second,
            _ => first,
        };
        let mut out = RateLimitHeaders::default();
        (
            out.limit_requests,
            out.remaining_requests,
            out.reset_requests,
        ) = either(openai("requests"), anthropic("requests"));
        (out.limit_tokens, out.remaining_tokens, out.reset_tokens) =
            either(openai("tokens"), anthropic("tokens"));
        (
            out.limit_input_tokens,
            out.remaining_input_tokens,
            out.reset_input_tokens,
        ) = anthropic("input-tokens");
        (
            out.limit_output_tokens,
            out.remaining_output_tokens,
            out.reset_output_tokens,
        ) = anthropic("output-tokens");
        out.processing = header("openai-processing-ms").and_then(|v| parse_milliseconds(&v));
        out
    }

    /// Parses from `(name, value)` pairs; names match case-insensitively.
    pub fn from_pairs<'a, I>(pairs: I, now: SystemTime) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        let lookup = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| (*v).to_owned())
        };
        Self::parse(&lookup, now)
    }

    /// True if no header carried anything usable.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitHeaders::default()
    }

    /// The window a reported `limit` is counted over, as its reset says: a minute or a day,
    /// `None` when the numbers do not tell.
    ///
    /// A bucket that refills `limit` units over its window is full again `used × window /
    /// limit` after its count, so the window is `reset × limit / used`. Counts and resets are
    /// rounded, so this reads as a minute up to 20 minutes and as a day from 2 hours to 3
    /// days; anything else (no reset, nothing used, or a reset that fits no window, as the
    /// `6m0s` for 16 tokens of 150,000 in OpenAI's own sample) says nothing.
    pub(crate) fn window(limit: u64, remaining: u64, reset: Option<Duration>) -> Option<Duration> {
        const MINUTE: Duration = Duration::from_secs(60);
        const DAY: Duration = Duration::from_secs(86_400);
        let used = limit.saturating_sub(remaining);
        let reset = reset.filter(|r| !r.is_zero())?;
        if used == 0 {
            return None;
        }
        let window = reset.as_secs_f64() * limit as f64 / used as f64;
        if window <= 20.0 * 60.0 {
            Some(MINUTE)
        } else if (2.0 * 3_600.0..=3.0 * 86_400.0).contains(&window) {
            Some(DAY)
        } else {
            None
        }
    }
}

/// Applies the sentinel rules to one dimension's raw header values.
fn read_triple(
    limit: Option<String>,
    remaining: Option<String>,
    reset: Option<Duration>,
) -> Triple {
    let limit = limit.and_then(|v| parse_count(&v));
    // A limit of 0 or -1 is a sentinel: nothing else about the dimension can be trusted.
    if matches!(limit, Some(n) if n <= 0) {
        return (None, None, None);
    }
    let remaining = match (limit, remaining.and_then(|v| parse_count(&v))) {
        // Below zero under a real limit: the server is over it, its bucket empty and more.
        (Some(_), Some(n)) => Some(n.max(0) as u64),
        (None, n) => n.and_then(|n| u64::try_from(n).ok()),
        (Some(_), None) => None,
    };
    (limit.map(|n| n as u64), remaining, reset)
}

/// An integer header value; tolerates surrounding whitespace and a fractional form like `"59.0"`.
fn parse_count(value: &str) -> Option<i64> {
    let value = value.trim();
    value.parse::<i64>().ok().or_else(|| {
        value
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

/// An OpenAI reset value: a Go duration, or bare (float) seconds as some compatible servers send.
fn parse_reset_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    parse_go_duration(value).or_else(|| {
        value
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    })
}

/// An Anthropic reset value: an RFC 3339 instant, as a duration from `now` (zero if past).
fn parse_reset_instant(value: &str, now: SystemTime) -> Option<Duration> {
    let at = parse_rfc3339(value.trim())?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-negative number of milliseconds, whole or fractional (`openai-processing-ms`).
fn parse_milliseconds(value: &str) -> Option<Duration> {
    let ms: f64 = value.trim().parse().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1_000.0))
}

/// Parses a Go duration (`time.ParseDuration` syntax), the format of OpenAI's
/// `x-ratelimit-reset-*` headers: `1s`, `6m0s`, `20ms`, `46.001s`, `1h30m`.
///
/// Accepts a sequence of decimal numbers (optionally fractional) each followed by a unit `h`,
/// `m`, `s`, `ms`, `us`/`µs`/`μs` or `ns`, an optional leading `+`, and the bare `0`. Returns
/// `None` for anything else and for negative durations (which cannot be waited for). A duration
/// too long to represent is [`Duration::MAX`]: a server asking for an absurd wait means "much
/// longer than you will wait", never "no answer".
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::http::parse_go_duration;
///
/// assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_go_duration("soon"), None);
/// ```
pub fn parse_go_duration(input: &str) -> Option<Duration> {
    let s = input.strip_prefix('+').unwrap_or(input);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        // The number: digits, optionally with one fractional part.
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        // The unit: the longest one that matches.
        let (unit_nanos, unit_len) = [
            ("ns", 1u128),
            ("us", 1_000),
            ("µs", 1_000),
            ("μs", 1_000),
            ("ms", 1_000_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
        ]
        .iter()
        .find(|(unit, _)| rest.starts_with(unit))
        .map(|(unit, nanos)| (*nanos, unit.len()))?;
        rest = &rest[unit_len..];

        // Only ASCII digits are left, so a parse failure is an overflow.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().unwrap_or(u128::MAX)
        };
        let mut nanos = whole.saturating_mul(unit_nanos);
        // Fraction: digits beyond nanosecond precision are dropped, as Go does.
        let mut scale = unit_nanos;
        for digit in frac.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos = nanos.saturating_add(u128::from(digit - b'0') * scale);
        }
        total_nanos = total_nanos.saturating_add(nanos);
    }
    match u64::try_from(total_nanos / 1_000_000_000) {
        Ok(secs) => Some(Duration::new(secs, (total_nanos % 1_000_000_000) as u32)),
        Err(_) => Some(Duration::MAX),
    }
}

/// Parses an RFC 3339 timestamp (`2026-03-14T02:17:09Z`, `2026-03-14T02:17:09.5+01:00`), the
/// format of Anthropic's `anthropic-ratelimit-*-reset` headers, with the `time` crate.
///
/// Accepts `T`/`t` (or, as RFC 3339 allows, a space) between date and time, fractional
/// seconds, and `Z`/`z` or a `±HH:MM` offset. A leap second (`:60`) is read as `:59`: the reset
/// it announces is a second early at worst. Returns `None` for anything malformed or out of
/// range.
pub(crate) fn parse_rfc3339(input: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;

    let mut text = input.to_owned();
    if text.get(10..11) == Some(" ") {
        text.replace_range(10..11, "T");
    }
    // `time` turns :60 into :59.999999999, and only where a leap second can fall.
    if text.get(16..19) == Some(":60") {
        text.replace_range(17..19, "59");
    }
    time::OffsetDateTime::parse(&text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn go_durations_from_openai_headers() {
        assert_eq!(parse_go_duration("1s"), Some(secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(secs(360)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_go_duration("46.001s"),
            Some(Duration::from_millis(46_001))
        );
        assert_eq!(
            parse_go_duration("55.212s"),
            Some(Duration::from_millis(55_212))
        );
        assert_eq!(parse_go_duration("1h30m"), Some(secs(5400)));
        assert_eq!(
            parse_go_duration("2h0m0.5s"),
            Some(Duration::from_millis(7_200_500))
        );
        assert_eq!(parse_go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(parse_go_duration("1.5h"), Some(secs(5400)));
        assert_eq!(parse_go_duration(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("+3s"), Some(secs(3)));
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(
            parse_go_duration("1.0000000019s"),
            Some(Duration::new(1, 1)),
            "digits past nanoseconds are dropped"
        );
    }

    #[test]
    fn go_durations_rejects() {
        for bad in [
            "", "s", "5", "-1s", "1x", "1.2.3s", "1 s", " 1s", "1s ", ".s", "1sm", "1d",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
        for huge in [
            "99999999999999999999h",
            "999999999999999999999999999999999999999999s",
        ] {
            assert_eq!(parse_go_duration(huge), Some(Duration::MAX), "{huge:?}");
        }
    }

    #[test]
    fn rfc3339_instants() {
        let at = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        // 2026-03-14T02:17:09Z: cross-checked with `date -u -d ... +%s`.
        assert_eq!(at("2026-03-14T02:17:09Z"), Some(secs(1_773_454_629)));
        assert_eq!(
            at("2026-03-14T02:17:09.25Z"),
            Some(Duration::from_millis(1_773_454_629_250))
        );
        assert_eq!(at("2026-03-14T03:17:09+01:00"), Some(secs(1_773_454_629)));
        assert_eq!(at("2026-03-13T21:17:09-05:00"), Some(secs(1_773_454_629)));
        assert_eq!(at("2024-02-29t00:00:00z"), Some(secs(1_709_164_800)));
        assert_eq!(
            at("2016-12-31T23:59:60Z"),
            at("2016-12-31T23:59:59Z"),
            "leap second reads as :59"
        );
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_some());
        assert_eq!(at("2026-03-14 02:17:09Z"), Some(secs(1_773_454_629)));
        for bad in [
            "2026-03-14",
            "2026-03-14T02:17:09",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-14T24:00:00Z",
            "2026-03-14T02:17:09.Z",
            "2026-03-14T02:17:09+0100",
            "2026-03-14T02:17:09Zjunk",
            "Sat, 14 Mar 2026 02:17:09 GMT",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn openai_headers_official_sample() {
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("X-RateLimit-Limit-Requests", "60"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-remaining-tokens", "149984"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            UNIX_EPOCH,
        );
        let expected = RateLimitHeaders {
            limit_requests: Some(60),
            remaining_requests: Some(59),
            reset_requests: Some(secs(1)),
            limit_tokens: Some(150_000),
            remaining_tokens: Some(149_984),
            reset_tokens: Some(secs(360)),
            ..RateLimitHeaders::default()
        };
        assert_eq!(parsed, expected);
    }

    #[test]
    fn openai_processing_time_is_read_in_milliseconds() {
        let parse = |value: &str| {
            RateLimitHeaders::from_pairs([("openai-processing-ms", value)], UNIX_EPOCH).processing
        };
        assert_eq!(parse("1234"), Some(Duration::from_millis(1_234)));
        assert_eq!(parse(" 0.5 "), Some(Duration::from_micros(500)));
        for bad in ["", "-3", "NaN", "inf", "12ms"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn anthropic_headers_resets_relative_to_injected_now() {
        let now = parse_rfc3339("2026-03-14T02:17:09Z").unwrap();
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "49"),
                ("anthropic-ratelimit-requests-reset", "2026-03-14T02:17:10Z"),
                ("anthropic-ratelimit-input-tokens-limit", "30000"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2026-03-14T02:18:09.5Z",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                ("anthropic-ratelimit-output-tokens-remaining", "7000"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2026-03-14T02:17:00Z",
                ),
                ("anthropic-ratelimit-tokens-limit", "38000"),
                ("anthropic-ratelimit-tokens-remaining", "7000"),
                ("anthropic-ratelimit-tokens-reset", "2026-03-14T02:17:39Z"),
            ],
            now,
        );
        assert_eq!(parsed.limit_requests, Some(50));
        assert_eq!(parsed.remaining_requests, Some(49));
        assert_eq!(parsed.reset_requests, Some(secs(1)));
        assert_eq!(parsed.limit_input_tokens, Some(30_000));
        assert_eq!(
            parsed.remaining_input_tokens,
            Some(0),
            "a real zero is kept"
        );
        assert_eq!(
            parsed.reset_input_tokens,
            Some(Duration::from_millis(60_500))
        );
        assert_eq!(parsed.limit_output_tokens, Some(8_000));
        assert_eq!(
            parsed.reset_output_tokens,
            Some(Duration::ZERO),
            "past reset"
        );
        assert_eq!(parsed.limit_tokens, Some(38_000));
        assert_eq!(parsed.reset_tokens, Some(secs(30)));

        let later = now + secs(10);
        let parsed = RateLimitHeaders::from_pairs(
            [("anthropic-ratelimit-tokens-reset", "2026-03-14T02:17:39Z")],
            later,
        );
        assert_eq!(parsed.reset_tokens, Some(secs(20)), "moves with now");
    }

    #[test]
    fn sentinel_values_are_ignored() {
        // Azure Responses API (openai-dotnet#838): -1 limits and a 0 reset.
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("x-ratelimit-limit-tokens", "-1"),
                ("x-ratelimit-remaining-tokens", "-1"),
                ("x-ratelimit-reset-tokens", "0"),
                ("x-ratelimit-limit-requests", "0"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "0s"),
            ],
            UNIX_EPOCH,
        );
        assert!(parsed.is_empty(), "{parsed:?}");

        // Only remaining, no limit (Azure sends just remaining): negative is dropped.
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("x-ratelimit-remaining-tokens", "-1"),
                ("x-ratelimit-remaining-requests", "12"),
                ("x-ratelimit-reset-requests", "garbage"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(parsed.remaining_tokens, None);
        assert_eq!(parsed.remaining_requests, Some(12));
        assert_eq!(parsed.reset_requests, None);
    }

    #[test]
    fn a_negative_remaining_under_a_real_limit_is_an_empty_bucket() {
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("x-ratelimit-limit-tokens", "60000"),
                ("x-ratelimit-remaining-tokens", "-20000"),
                ("anthropic-ratelimit-input-tokens-limit", "30000"),
                ("anthropic-ratelimit-input-tokens-remaining", "-1.5"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(parsed.limit_tokens, Some(60_000));
        assert_eq!(parsed.remaining_tokens, Some(0));
        assert_eq!(parsed.remaining_input_tokens, Some(0));
    }

    #[test]
    fn the_reset_tells_a_minute_from_a_day() {
        let window = |limit, remaining, reset| RateLimitHeaders::window(limit, remaining, reset);
        let (minute, day) = (Some(secs(60)), Some(secs(86_400)));
        // OpenAI's sample: 1 of 60 requests used, full again in 1 s.
        assert_eq!(window(60, 59, Some(secs(1))), minute);
        // 37 of 10,000 requests a day, full again in 5 min 20 s.
        assert_eq!(window(10_000, 9_963, Some(secs(320))), day);
        // Anthropic's resets are whole seconds: 1 s for 100 of 30,000 tokens.
        assert_eq!(window(30_000, 29_900, Some(secs(1))), minute);
        // Nothing used, no reset, or a reset that fits no window: unknown.
        assert_eq!(window(60, 60, Some(secs(1))), None);
        assert_eq!(window(60, 59, None), None);
        assert_eq!(window(60, 59, Some(Duration::ZERO)), None);
        assert_eq!(window(150_000, 149_984, Some(secs(360))), None);
    }

    #[test]
    fn odd_but_usable_values() {
        let parsed = RateLimitHeaders::from_pairs(
            [
                ("x-ratelimit-limit-requests", " 20 "),
                ("x-ratelimit-remaining-requests", "19.0"),
                ("x-ratelimit-reset-requests", "0.5"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(parsed.limit_requests, Some(20));
        assert_eq!(parsed.remaining_requests, Some(19));
        assert_eq!(parsed.reset_requests, Some(Duration::from_millis(500)));
        assert!(RateLimitHeaders::from_pairs([("content-type", "json")], UNIX_EPOCH).is_empty());
    }
}
