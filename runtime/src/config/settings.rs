//! Process-wide settings: headroom, retry budget, longest retry-after, Redis URL, breaker,
//! process-wide budget.

use std::fmt;
use std::time::Duration;

use super::limits::parse_integer;
use super::spend::{
    read_breaker_cooldown, read_breaker_failures, read_spend_limit, BUDGET_TOKENS_VAR,
    BUDGET_USD_VAR, DEFAULT_BREAKER_COOLDOWN, DEFAULT_BREAKER_FAILURES,
};
use super::{
    get, process_env, DEFAULT_HEADROOM, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER, HEADROOM_VAR,
    LEARN_LIMITS_VAR, MAX_RETRIES_VAR, MAX_RETRY_AFTER_VAR, REDIS_SCHEMES, REDIS_URL_VAR,
};
use crate::units::error::Error;
use crate::units::money::SpendLimit;

/// Process-wide settings that are not per family.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// Fraction of each limit to use, in (0, 1] (`RATE_LIMITED_HEADROOM`, default 0.9).
    pub headroom: f64,
    /// Default retry budget (`RATE_LIMITED_MAX_RETRIES`, default 6); 0 means no retry.
    pub max_retries: u32,
    /// A server-requested wait longer than this fails at once
    /// (`RATE_LIMITED_MAX_RETRY_AFTER`, default 120 s).
    pub max_retry_after: Duration,
    /// Redis URL to share limits through (`RATE_LIMITED_REDIS_URL`); `None` = in-process.
    pub redis_url: Option<String>,
    /// Adopt the limits the server reports when they differ from the configured tier, higher
    /// ones included (`RATE_LIMITED_LEARN_LIMITS`, default off). Lower ones are adopted either
    /// way: that only makes the limiter safer.
    pub learn_limits: bool,
    /// Consecutive transient failures that open a family's circuit breaker
    /// (`RATE_LIMITED_BREAKER_FAILURES`, default 10); 0 turns the breaker off.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before one probe may go
    /// (`RATE_LIMITED_BREAKER_COOLDOWN_MS`, default 30 s).
    pub breaker_cooldown: Duration,
    /// What the whole process may use (`RATE_LIMITED_BUDGET_TOKENS`, `RATE_LIMITED_BUDGET_USD`);
    /// unlimited by default.
    pub budget: SpendLimit,
}

impl Default for Settings {
    /// The defaults: headroom 0.9, 6 retries, 120 s maximum retry-after, no Redis, a breaker
    /// that opens after 10 transient failures for 30 s, no budget.
    fn default() -> Self {
        Settings {
            headroom: DEFAULT_HEADROOM,
            max_retries: DEFAULT_MAX_RETRIES,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            redis_url: None,
            learn_limits: false,
            breaker_failures: DEFAULT_BREAKER_FAILURES,
            breaker_cooldown: DEFAULT_BREAKER_COOLDOWN,
            budget: SpendLimit::NONE,
        }
    }
}

impl fmt::Debug for Settings {
    /// Like a derived `Debug`, with the Redis password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("headroom", &self.headroom)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("learn_limits", &self.learn_limits)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] for the first malformed variable.
    pub fn from_env() -> Result<Settings, Error> {
        Settings::from_lookup(&process_env)
    }

    /// Reads the settings through `lookup` (a variable name to its value).
    ///
    /// # Errors
    /// [`Error::Config`] for the first malformed variable.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        Ok(Settings {
            headroom: read_headroom(lookup)?,
            max_retries: read_max_retries(lookup)?,
            max_retry_after: read_max_retry_after(lookup)?,
            redis_url: read_redis_url(lookup)?,
            learn_limits: read_learn_limits(lookup)?,
            breaker_failures: read_breaker_failures(lookup)?,
            breaker_cooldown: read_breaker_cooldown(lookup)?,
            budget: read_spend_limit(lookup, BUDGET_TOKENS_VAR, BUDGET_USD_VAR)?,
        })
    }
}

pub(crate) fn read_headroom(lookup: &dyn Fn(&str) -> Option<String>) -> Result<f64, Error> {
    let Some(value) = get(lookup, HEADROOM_VAR) else {
        return Ok(DEFAULT_HEADROOM);
    };
    match value.parse::<f64>() {
        Ok(h) if crate::units::quota::check_headroom(h).is_ok() => Ok(h),
        _ => Err(Error::config(
            HEADROOM_VAR,
            value,
            crate::units::quota::check_headroom(f64::NAN).unwrap_err(),
        )),
    }
}

fn read_max_retries(lookup: &dyn Fn(&str) -> Option<String>) -> Result<u32, Error> {
    let Some(value) = get(lookup, MAX_RETRIES_VAR) else {
        return Ok(DEFAULT_MAX_RETRIES);
    };
    parse_integer(&value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            Error::config(
                MAX_RETRIES_VAR,
                value,
                "a whole number of retries from 0 to 4294967295 (0 disables retrying, e.g. 6)",
            )
        })
}

fn read_max_retry_after(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Duration, Error> {
    let Some(value) = get(lookup, MAX_RETRY_AFTER_VAR) else {
        return Ok(DEFAULT_MAX_RETRY_AFTER);
    };
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Error::config(
                MAX_RETRY_AFTER_VAR,
                value,
                "a number of seconds, 0 or more, decimals allowed (e.g. 120 or 2.5)",
            )
        })
}

fn read_learn_limits(lookup: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    let Some(value) = get(lookup, LEARN_LIMITS_VAR) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            LEARN_LIMITS_VAR,
            value,
            "1, true, yes or on to adopt the limits the server reports; 0, false, no or off \
             (the default) to keep the configured tier",
        )),
    }
}

fn read_redis_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, Error> {
    let Some(value) = get(lookup, REDIS_URL_VAR) else {
        return Ok(None);
    };
    let lower = value.to_ascii_lowercase();
    let valid = REDIS_SCHEMES
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len());
    if valid {
        Ok(Some(value))
    } else {
        Err(Error::config(
            REDIS_URL_VAR,
            redact_url(&value),
            "a URL starting with redis://, rediss://, redis+unix:// or unix:// followed by a \
             host or socket path (e.g. redis://127.0.0.1:6379/0)",
        ))
    }
}

/// The URLs of a comma-separated list (a Redis Cluster's seed nodes), trimmed. A comma
/// starts a new URL only when a scheme follows it: a password may hold a comma.
pub(crate) fn split_urls(list: &str) -> Vec<&str> {
    fn clean(url: &str) -> &str {
        url.trim_matches(|c: char| c == ',' || c.is_whitespace())
    }
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in list.match_indices(',') {
        let next = &list[comma + 1..];
        if next
            .split(',')
            .next()
            .is_some_and(|part| part.contains("://"))
        {
            urls.push(clean(&list[start..comma]));
            start = comma + 1;
        }
    }
    urls.push(clean(&list[start..]));
    urls.retain(|url| !url.is_empty());
    urls
}

/// The URL, or each URL of a list, with any password (user info) replaced by `***`, for
/// messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    if url.contains(',') {
        let urls = split_urls(url);
        if urls.len() > 1 {
            return urls
                .into_iter()
                .map(redact_one_url)
                .collect::<Vec<_>>()
                .join(",");
        }
    }
    redact_one_url(url)
}

fn redact_one_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_env::{assert_config, env};
    use super::*;

    #[test]
    fn settings_defaults() {
        let settings = Settings::from_lookup(&env(&[])).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.headroom, 0.9);
        assert_eq!(settings.max_retries, 6);
        assert_eq!(settings.max_retry_after, Duration::from_secs(120));
        assert_eq!(settings.redis_url, None);
    }

    #[test]
    fn settings_good_values() {
        let settings = Settings::from_lookup(&env(&[
            (HEADROOM_VAR, "0.75"),
            (MAX_RETRIES_VAR, "0"),
            (MAX_RETRY_AFTER_VAR, "2.5"),
            (REDIS_URL_VAR, " rediss://user:secret@cache.example:6380/2 "),
        ]))
        .unwrap();
        assert_eq!(settings.headroom, 0.75);
        assert_eq!(settings.max_retries, 0);
        assert_eq!(settings.max_retry_after, Duration::from_millis(2_500));
        assert_eq!(
            settings.redis_url.as_deref(),
            Some("rediss://user:secret@cache.example:6380/2")
        );
        let debug = format!("{settings:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(
            debug.contains("rediss://***@cache.example:6380/2"),
            "{debug}"
        );
    }

    #[test]
    fn headroom_bounds() {
        for good in ["1", "1.0", "0.5", "0.01"] {
            let s = Settings::from_lookup(&env(&[(HEADROOM_VAR, good)])).unwrap();
            assert_eq!(s.headroom, good.parse::<f64>().unwrap());
        }
        for bad in ["0", "-0.5", "1.1", "90%", "NaN", "inf", "high"] {
            assert_config(
                Settings::from_lookup(&env(&[(HEADROOM_VAR, bad)])),
                HEADROOM_VAR,
                bad,
                "greater than 0 and at most 1",
            );
        }
    }

    #[test]
    fn max_retries_values() {
        let s = Settings::from_lookup(&env(&[(MAX_RETRIES_VAR, "10")])).unwrap();
        assert_eq!(s.max_retries, 10);
        for bad in ["-1", "three", "2.5", "99999999999"] {
            assert_config(
                Settings::from_lookup(&env(&[(MAX_RETRIES_VAR, bad)])),
                MAX_RETRIES_VAR,
                bad,
                "whole number of retries",
            );
        }
    }

    #[test]
    fn max_retry_after_values() {
        let s = Settings::from_lookup(&env(&[(MAX_RETRY_AFTER_VAR, "60")])).unwrap();
        assert_eq!(s.max_retry_after, Duration::from_secs(60));
        let s = Settings::from_lookup(&env(&[(MAX_RETRY_AFTER_VAR, "0")])).unwrap();
        assert_eq!(s.max_retry_after, Duration::ZERO);
        for bad in ["-1", "2m", "120s", "inf", "1e30"] {
            assert_config(
                Settings::from_lookup(&env(&[(MAX_RETRY_AFTER_VAR, bad)])),
                MAX_RETRY_AFTER_VAR,
                bad,
                "seconds",
            );
        }
    }

    #[test]
    fn redis_url_schemes() {
        for good in [
            "redis://127.0.0.1:6379/0",
            "REDIS://localhost",
            "rediss://cache:6380",
            "redis+unix:///run/redis.sock",
            "unix:///tmp/redis.sock",
        ] {
            let s = Settings::from_lookup(&env(&[(REDIS_URL_VAR, good)])).unwrap();
            assert_eq!(s.redis_url.as_deref(), Some(good));
        }
        for bad in [
            "localhost:6379",
            "http://redis:6379",
            "redis://",
            "memcached://x",
        ] {
            assert_config(
                Settings::from_lookup(&env(&[(REDIS_URL_VAR, bad)])),
                REDIS_URL_VAR,
                bad,
                "redis://, rediss://, redis+unix:// or unix://",
            );
        }
    }

    #[test]
    fn redis_url_error_redacts_password() {
        assert_config(
            Settings::from_lookup(&env(&[(REDIS_URL_VAR, "http://:hunter2@redis:6379")])),
            REDIS_URL_VAR,
            "http://***@redis:6379",
            "redis://",
        );
        assert_eq!(redact_url("redis://h:1/0?x=a@b"), "redis://h:1/0?x=a@b");
    }

    #[test]
    fn a_list_of_urls_is_split_and_each_is_redacted() {
        let list = "redis://:p1@a:7000, redis://:p,2@b:7001,,rediss://c:7002";
        assert_eq!(
            split_urls(list),
            [
                "redis://:p1@a:7000",
                "redis://:p,2@b:7001",
                "rediss://c:7002"
            ]
        );
        assert_eq!(
            redact_url(list),
            "redis://***@a:7000,redis://***@b:7001,rediss://c:7002"
        );
        // A comma in a single URL's password does not split it.
        assert_eq!(split_urls("redis://:a,b@h:1"), ["redis://:a,b@h:1"]);
        assert_eq!(redact_url("redis://:a,b@h:1"), "redis://***@h:1");
    }
}
