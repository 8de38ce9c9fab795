//! Configuration from environment variables.
//!
//! | variable | meaning |
//! |---|---|
//! | `RATE_LIMITED_TIER` | default tier for every provider; default `tier-1` |
//! | `RATE_LIMITED_<PROVIDER>_TIER` | tier of one provider (`OPENAI`, `AZURE`, `ANTHROPIC`, `GEMINI`) |
//! | `RATE_LIMITED_<FAMILY>_<DIM>` | one limit of one family; DIM is `RPM`, `TPM`, `ITPM`, `OTPM`, `RPD`, `TPD`, `CONCURRENCY` or `MIN_INTERVAL_MS` |
//! | `RATE_LIMITED_HEADROOM` | fraction of each limit to use, in (0, 1]; default 0.9 |
//! | `RATE_LIMITED_MAX_RETRIES` | default retry budget; default 6 |
//! | `RATE_LIMITED_MAX_RETRY_AFTER` | longest server-requested wait honoured, in seconds (decimals allowed); default 120 |
//! | `RATE_LIMITED_REDIS_URL` | `redis://`, `rediss://`, `redis+unix://` or `unix://` URL; unset = in-process |
//!
//! Precedence: attribute argument > env var > built-in table. The tier of a call is the
//! attribute's `tier`, else `RATE_LIMITED_<PROVIDER>_TIER`, else `RATE_LIMITED_TIER`, else
//! `tier-1`. Its quota is the built-in entry of its family at that tier (see the `tiers` module),
//! then each `RATE_LIMITED_<FAMILY>_<DIM>` replaces one dimension; for a family with no built-in
//! entry, those variables define it. FAMILY is the family id upper-cased with every
//! non-alphanumeric character as `_` (`gpt-4o-mini` → `GPT_4O_MINI`).
//!
//! Limit values are positive integers, with optional `_` digit separators (`200_000`); the word
//! `unlimited` removes a built-in limit. A malformed value is an [`Error::Config`] naming the
//! variable, the value and what is accepted, never a silent fallback. A variable set to the
//! empty string (or only whitespace) counts as unset.
//!
//! A model with neither a built-in entry nor any override is an [`Error::UnknownModel`] whose
//! hint names the variables to set: the library does not guess limits.
//!
//! Every reader takes the environment as a lookup function, so tests can inject a map:
//!
//! ```
//! use std::collections::HashMap;
//! use ratelimited_runtime::config::resolve;
//!
//! let env: HashMap<&str, &str> = [("RATE_LIMITED_GPT_4O_MINI_TPM", "150_000")].into();
//! let lookup = |name: &str| env.get(name).map(|v| v.to_string());
//! let resolved = resolve("gpt-4o-mini-2024-07-18", None, None, &lookup).unwrap();
//! assert_eq!(resolved.family.id, "gpt-4o-mini");
//! assert_eq!(resolved.tier, "tier-1");
//! assert_eq!(resolved.quota.rpm, Some(500));
//! assert_eq!(resolved.quota.tpm, Some(150_000));
//! assert_eq!(resolved.quota.headroom, 0.9);
//! ```

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::family::{LimitFamily, Provider};
use crate::quota::{Dimension, Quota};
use crate::tiers::{self, TierSource};

/// `RATE_LIMITED_TIER`: the default tier of every provider.
pub const TIER_VAR: &str = "RATE_LIMITED_TIER";
/// `RATE_LIMITED_HEADROOM`: the fraction of each limit to use.
pub const HEADROOM_VAR: &str = "RATE_LIMITED_HEADROOM";
/// `RATE_LIMITED_MAX_RETRIES`: the default retry budget.
pub const MAX_RETRIES_VAR: &str = "RATE_LIMITED_MAX_RETRIES";
/// `RATE_LIMITED_MAX_RETRY_AFTER`: the longest server-requested wait honoured, in seconds.
pub const MAX_RETRY_AFTER_VAR: &str = "RATE_LIMITED_MAX_RETRY_AFTER";
/// `RATE_LIMITED_REDIS_URL`: share limits through Redis.
pub const REDIS_URL_VAR: &str = "RATE_LIMITED_REDIS_URL";

/// The tier used when neither the attribute nor the env names one.
pub const DEFAULT_TIER: &str = "tier-1";
/// The default headroom.
pub const DEFAULT_HEADROOM: f64 = 0.9;
/// The default retry budget.
pub const DEFAULT_MAX_RETRIES: u32 = 6;
/// The default longest server-requested wait honoured.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The URL schemes accepted in `RATE_LIMITED_REDIS_URL`.
pub const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];

/// Reads a variable from the process environment.
///
/// A value that is not valid UTF-8 is returned lossily converted, so that it fails validation
/// with an error instead of looking unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// The variable holding the tier of one provider: `RATE_LIMITED_OPENAI_TIER`, ..
pub fn provider_tier_var(provider: Provider) -> String {
    format!("RATE_LIMITED_{}_TIER", provider.env_name())
}

/// The variable overriding one dimension of one family: `RATE_LIMITED_GPT_4O_MINI_TPM`, ..
pub fn limit_var(family: &LimitFamily, dimension: Dimension) -> String {
    format!(
        "RATE_LIMITED_{}_{}",
        family.env_prefix(),
        dimension.env_suffix()
    )
}

/// A set value: `None` if unset, empty or only whitespace; otherwise the value trimmed.
fn get(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

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
}

impl Default for Settings {
    /// The defaults: headroom 0.9, 6 retries, 120 s maximum retry-after, no Redis.
    fn default() -> Self {
        Settings {
            headroom: DEFAULT_HEADROOM,
            max_retries: DEFAULT_MAX_RETRIES,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            redis_url: None,
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
        })
    }
}

fn read_headroom(lookup: &dyn Fn(&str) -> Option<String>) -> Result<f64, Error> {
    let Some(value) = get(lookup, HEADROOM_VAR) else {
        return Ok(DEFAULT_HEADROOM);
    };
    match value.parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 && h <= 1.0 => Ok(h),
        _ => Err(Error::config(
            HEADROOM_VAR,
            value,
            "a number greater than 0 and at most 1, the fraction of each limit to use (e.g. 0.9)",
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

/// The URL with any password (user info) replaced by `***`, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// A non-negative integer with optional single `_` separators between digits.
fn parse_integer(value: &str) -> Option<u64> {
    let well_formed = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !value.starts_with('_')
        && !value.ends_with('_')
        && !value.contains("__");
    if !well_formed {
        return None;
    }
    value.replace('_', "").parse().ok()
}

/// Parses the value of `RATE_LIMITED_<FAMILY>_<DIM>`: a positive integer (with optional `_`
/// digit separators) or `unlimited` (case-insensitive), which returns `Ok(None)`.
///
/// # Errors
/// [`Error::Config`] naming `variable`, the value and what is accepted.
///
/// ```
/// use ratelimited_runtime::{config::parse_limit, Dimension};
/// let tpm = Dimension::TokensPerMinute;
/// assert_eq!(parse_limit("X_TPM", "200_000", tpm).unwrap(), Some(200_000));
/// assert_eq!(parse_limit("X_TPM", "unlimited", tpm).unwrap(), None);
/// assert!(parse_limit("X_TPM", "200k", tpm).is_err());
/// ```
pub fn parse_limit(
    variable: &str,
    value: &str,
    dimension: Dimension,
) -> Result<Option<u64>, Error> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let max = match dimension {
        Dimension::Concurrency => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    match parse_integer(trimmed) {
        Some(n) if n > 0 && n <= max => Ok(Some(n)),
        _ => {
            let unit = match dimension {
                Dimension::MinInterval => "milliseconds between two request starts".to_owned(),
                Dimension::Concurrency => format!("{dimension}, at most {max},"),
                other => other.to_string(),
            };
            Err(Error::config(
                variable,
                value,
                format!(
                    "a positive whole number of {unit} (`_` digit separators allowed, e.g. \
                     200_000), or `unlimited` to remove the limit"
                ),
            ))
        }
    }
}

/// The tier in force for `provider`: `tier` (the attribute argument) if given, else
/// `RATE_LIMITED_<PROVIDER>_TIER`, else `RATE_LIMITED_TIER`, else `tier-1`; validated and
/// normalized by [`tiers::validate_tier`].
///
/// # Errors
/// [`Error::Config`] naming the variable the malformed tier came from (`tier` for the
/// argument).
pub fn resolve_tier(
    provider: Provider,
    tier: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    if let Some(tier) = tier {
        return tiers::validate_tier(provider, "tier", tier);
    }
    let provider_var = provider_tier_var(provider);
    if let Some(tier) = get(lookup, &provider_var) {
        return tiers::validate_tier(provider, &provider_var, &tier);
    }
    if let Some(tier) = get(lookup, TIER_VAR) {
        return tiers::validate_tier(provider, TIER_VAR, &tier);
    }
    Ok(DEFAULT_TIER.to_owned())
}

/// Azure OpenAI's requests per minute for a deployment with `tpm` tokens per minute.
///
/// Azure derives RPM from the TPM quota with a ratio that depends on the model: o1 and
/// o1-preview get 1 RPM per 6,000 TPM; o3 and o4-mini 1 per 1,000; o3-mini, o1-mini and o3-pro
/// 1 per 10,000; other (chat) models 6 per 1,000 (Azure quota docs, 2025-07). The model is
/// recognized from the deployment name when it is named after the model (`o3-mini`,
/// `o1-2024-12-17`); any other name gets the default ratio. The result is at least 1.
///
/// ```
/// use ratelimited_runtime::config::azure_rpm_from_tpm;
/// assert_eq!(azure_rpm_from_tpm("my-gpt-4o", 240_000), 1_440);
/// assert_eq!(azure_rpm_from_tpm("o3-mini", 240_000), 24);
/// ```
pub fn azure_rpm_from_tpm(deployment: &str, tpm: u64) -> u64 {
    let model = LimitFamily::of(Provider::OpenAi, deployment).id;
    let (requests, per_tokens) = match model.as_str() {
        "o1" => (1, 6_000),
        "o3" | "o4-mini" => (1, 1_000),
        "o3-mini" | "o1-mini" | "o3-pro" => (1, 10_000),
        _ => (6, 1_000),
    };
    (tpm.saturating_mul(requests) / per_tokens).max(1)
}

/// The limits in force for one model: its family, tier, quota and where the quota came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The limit family the model draws on.
    pub family: LimitFamily,
    /// The tier in force, normalized (lower case).
    pub tier: String,
    /// The quota: built-in entry, then env overrides, with the configured headroom.
    pub quota: Quota,
    /// The source of the built-in entry, if one was used.
    pub source: Option<&'static TierSource>,
    /// The dimensions set by `RATE_LIMITED_<FAMILY>_<DIM>` variables (for Azure, an RPM derived
    /// from an overridden TPM is not listed).
    pub overrides: Vec<Dimension>,
}

/// Resolves the limits of `model`.
///
/// - provider: `provider` if given (validated), else inferred from the model name, else an
///   error;
/// - tier: see [`resolve_tier`];
/// - quota: the built-in table entry of the model's family at that tier, then every
///   `RATE_LIMITED_<FAMILY>_<DIM>` replaces one dimension; for Azure, when TPM is set and RPM is
///   not, RPM is derived with [`azure_rpm_from_tpm`]; headroom from `RATE_LIMITED_HEADROOM`.
///
/// # Errors
/// - [`Error::Config`] for an unknown or uninferable provider, a malformed tier, limit or
///   headroom;
/// - [`Error::UnknownModel`] if the family has no built-in entry at that tier and no variable
///   defines it; its hint names the variables to set.
pub fn resolve(
    model: &str,
    provider: Option<&str>,
    tier: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, Error> {
    if model.trim().is_empty() {
        return Err(Error::config("model", model, "a non-empty model id"));
    }
    let provider = match provider {
        Some(name) => Provider::parse(name)?,
        None => Provider::infer(model).ok_or_else(|| {
            Error::config(
                "provider",
                "",
                format!(
                    "one of openai, azure, anthropic, gemini: it could not be inferred from the \
                     model `{model}` (only gpt-*, chatgpt-*, o1/o3/o4*, text-embedding-*, \
                     claude-* and gemini-* are recognized); pass provider = \"openai\" for an \
                     OpenAI-compatible endpoint"
                ),
            )
        })?,
    };
    let tier = resolve_tier(provider, tier, lookup)?;
    let family = LimitFamily::of(provider, model);
    let entry = tiers::builtin_entry(provider, &tier, &family.id);
    let mut quota = entry.map_or_else(Quota::default, |e| e.quota());

    let mut overrides = Vec::new();
    for dimension in Dimension::ALL {
        let variable = limit_var(&family, dimension);
        if let Some(value) = get(lookup, &variable) {
            quota.set_limit(dimension, parse_limit(&variable, &value, dimension)?);
            overrides.push(dimension);
        }
    }

    if entry.is_none() && overrides.is_empty() {
        return Err(Error::UnknownModel {
            model: model.to_owned(),
            provider: provider.as_str().to_owned(),
            tier,
            family_env: family.env_prefix(),
            hint: unknown_model_hint(&family),
        });
    }

    if provider == Provider::Azure && !overrides.contains(&Dimension::RequestsPerMinute) {
        if let (None, Some(tpm)) = (quota.rpm, quota.tpm) {
            quota.rpm = Some(azure_rpm_from_tpm(&family.id, tpm));
        }
    }

    quota.headroom = read_headroom(lookup)?;
    tracing::debug!(
        family = %family,
        tier = %tier,
        source = entry.map(|e| e.source.source_date),
        ?overrides,
        ?quota,
        "resolved rate limits"
    );
    Ok(Resolved {
        family,
        tier,
        quota,
        source: entry.map(|e| e.source),
        overrides,
    })
}

/// Which variables would define an unknown family, phrased for [`Error::UnknownModel`].
fn unknown_model_hint(family: &LimitFamily) -> String {
    let var = |dimension: Dimension| limit_var(family, dimension);
    let mut hint = match family.provider {
        Provider::OpenAi => format!(
            "{} and {} to your account's limits for this model",
            var(Dimension::RequestsPerMinute),
            var(Dimension::TokensPerMinute)
        ),
        Provider::Anthropic => format!(
            "{}, {} and {} to your account's limits for this model",
            var(Dimension::RequestsPerMinute),
            var(Dimension::InputTokensPerMinute),
            var(Dimension::OutputTokensPerMinute)
        ),
        Provider::Gemini => format!(
            "{}, {} (Gemini's TPM counts input tokens only) and {} to the limits AI Studio shows \
             for this model; there is no built-in Gemini table",
            var(Dimension::RequestsPerMinute),
            var(Dimension::InputTokensPerMinute),
            var(Dimension::RequestsPerDay)
        ),
        Provider::Azure => format!(
            "{} to the deployment's TPM quota (RPM is derived from it) or {} as well; there is \
             no built-in Azure table",
            var(Dimension::TokensPerMinute),
            var(Dimension::RequestsPerMinute)
        ),
    };
    let tiers = tiers::tiers_of(family.provider, &family.id);
    if !tiers.is_empty() {
        hint.push_str(&format!(
            ", or use a tier with built-in limits for `{}` ({})",
            family.id,
            tiers.join(", ")
        ));
    }
    hint
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A lookup over fixed pairs; the process env is never touched.
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    /// Asserts a Config error naming `variable`, `value`, and an `expected` containing `needle`.
    fn assert_config(
        result: Result<impl fmt::Debug, Error>,
        variable: &str,
        value: &str,
        needle: &str,
    ) {
        match result {
            Err(Error::Config {
                variable: v,
                value: val,
                expected,
            }) => {
                assert_eq!(v, variable);
                assert_eq!(val, value);
                assert!(expected.contains(needle), "{expected:?} lacks {needle:?}");
                let shown = Error::config(v, val, expected).to_string();
                assert!(shown.contains(variable) && shown.contains(value), "{shown}");
            }
            other => panic!("expected a Config error for {variable}={value:?}, got {other:?}"),
        }
    }

    fn resolve_with(model: &str, pairs: &[(&str, &str)]) -> Result<Resolved, Error> {
        resolve(model, None, None, &env(pairs))
    }

    // ----- Settings -------------------------------------------------------------------------

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
    fn empty_values_count_as_unset() {
        let s = Settings::from_lookup(&env(&[(HEADROOM_VAR, ""), (REDIS_URL_VAR, "  ")])).unwrap();
        assert_eq!(s, Settings::default());
        let r = resolve_with(
            "gpt-4o",
            &[(TIER_VAR, " "), ("RATE_LIMITED_GPT_4O_TPM", "")],
        )
        .unwrap();
        assert_eq!(r.tier, "tier-1");
        assert_eq!(r.quota.tpm, Some(30_000));
    }

    // ----- Tiers ----------------------------------------------------------------------------

    #[test]
    fn tier_precedence() {
        let all = [("RATE_LIMITED_OPENAI_TIER", "tier-3"), (TIER_VAR, "tier-2")];
        // attribute > provider tier > global tier > default
        let r = resolve("gpt-4o", None, Some("tier-4"), &env(&all)).unwrap();
        assert_eq!(r.tier, "tier-4");
        assert_eq!(r.quota.tpm, Some(2_000_000));
        let r = resolve("gpt-4o", None, None, &env(&all)).unwrap();
        assert_eq!(r.tier, "tier-3");
        assert_eq!(r.quota.tpm, Some(800_000));
        let r = resolve("gpt-4o", None, None, &env(&all[1..])).unwrap();
        assert_eq!(r.tier, "tier-2");
        assert_eq!(r.quota.tpm, Some(450_000));
        let r = resolve("gpt-4o", None, None, &env(&[])).unwrap();
        assert_eq!(r.tier, "tier-1");
        assert_eq!(r.quota.tpm, Some(30_000));
        // Another provider's tier variable does not apply.
        let r = resolve(
            "gpt-4o",
            None,
            None,
            &env(&[("RATE_LIMITED_ANTHROPIC_TIER", "tier-4")]),
        )
        .unwrap();
        assert_eq!(r.tier, "tier-1");
    }

    #[test]
    fn tier_errors_name_their_variable() {
        assert_config(
            resolve("gpt-4o", None, Some("tier-9"), &env(&[])),
            "tier",
            "tier-9",
            "free, tier-1, tier-2, tier-3, tier-4, tier-5",
        );
        assert_config(
            resolve_with("gpt-4o", &[("RATE_LIMITED_OPENAI_TIER", "gold")]),
            "RATE_LIMITED_OPENAI_TIER",
            "gold",
            "free, tier-1",
        );
        assert_config(
            resolve_with("gpt-4o", &[(TIER_VAR, "build")]),
            TIER_VAR,
            "build",
            "RATE_LIMITED_OPENAI_TIER",
        );
        assert_config(
            resolve_with(
                "claude-sonnet-4-5",
                &[("RATE_LIMITED_ANTHROPIC_TIER", "tier 2")],
            ),
            "RATE_LIMITED_ANTHROPIC_TIER",
            "tier 2",
            "tier name",
        );
        // Every provider has its own tier variable.
        for provider in Provider::ALL {
            let var = provider_tier_var(provider);
            assert_config(
                resolve_tier(provider, None, &env(&[(&var, "?")])),
                &var,
                "?",
                "tier",
            );
            assert_eq!(
                resolve_tier(provider, None, &env(&[(&var, "Tier-2")])).unwrap(),
                "tier-2"
            );
        }
    }

    #[test]
    fn free_form_tiers_for_anthropic() {
        // An Anthropic tier without a built-in table needs overrides.
        let err = resolve_with("claude-sonnet-4-5", &[(TIER_VAR, "Build")]).unwrap_err();
        match err {
            Error::UnknownModel { tier, hint, .. } => {
                assert_eq!(tier, "build");
                assert!(hint.contains("tier-1, tier-2, tier-3, tier-4"), "{hint}");
            }
            other => panic!("{other:?}"),
        }
        let r = resolve_with(
            "claude-sonnet-4-5",
            &[
                (TIER_VAR, "Build"),
                ("RATE_LIMITED_CLAUDE_SONNET_4_RPM", "2000"),
                ("RATE_LIMITED_CLAUDE_SONNET_4_ITPM", "800000"),
            ],
        )
        .unwrap();
        assert_eq!(r.tier, "build");
        assert_eq!(
            (r.quota.rpm, r.quota.itpm, r.quota.otpm),
            (Some(2_000), Some(800_000), None)
        );
        assert_eq!(r.source, None);
    }

    // ----- Providers ------------------------------------------------------------------------

    #[test]
    fn provider_explicit_inferred_or_error() {
        let r = resolve("claude-sonnet-4-5-20250929", None, None, &env(&[])).unwrap();
        assert_eq!(r.family.provider, Provider::Anthropic);
        assert_eq!(r.family.id, "claude-sonnet-4");
        assert_eq!(
            (r.quota.rpm, r.quota.itpm, r.quota.otpm),
            (Some(50), Some(30_000), Some(8_000))
        );
        let r = resolve(
            "llama-3",
            Some("OpenAI"),
            None,
            &env(&[("RATE_LIMITED_LLAMA_3_RPM", "100")]),
        )
        .unwrap();
        assert_eq!(r.family.provider, Provider::OpenAi);
        assert_config(
            resolve("gpt-4o", Some("mistral"), None, &env(&[])),
            "provider",
            "mistral",
            "openai, azure, anthropic, gemini",
        );
        assert_config(
            resolve("llama-3", None, None, &env(&[])),
            "provider",
            "",
            "could not be inferred from the model `llama-3`",
        );
        assert_config(
            resolve(" ", None, None, &env(&[])),
            "model",
            " ",
            "non-empty",
        );
    }

    // ----- Quotas and overrides -------------------------------------------------------------

    #[test]
    fn builtin_quota_with_headroom_and_source() {
        let r = resolve_with("gpt-4o-mini", &[(HEADROOM_VAR, "0.5")]).unwrap();
        assert_eq!(
            (r.quota.rpm, r.quota.tpm, r.quota.rpd),
            (Some(500), Some(200_000), Some(10_000))
        );
        assert_eq!(r.quota.headroom, 0.5);
        assert_eq!(r.source.unwrap().source_date, "2025-09");
        assert!(r.overrides.is_empty());
        let r = resolve_with("gpt-4o-mini", &[]).unwrap();
        assert_eq!(r.quota.headroom, 0.9);
        assert_config(
            resolve_with("gpt-4o-mini", &[(HEADROOM_VAR, "2")]),
            HEADROOM_VAR,
            "2",
            "at most 1",
        );
    }

    #[test]
    fn every_dimension_can_be_overridden() {
        let values = [
            (Dimension::RequestsPerMinute, "RPM", "1_000", 1_000),
            (Dimension::TokensPerMinute, "TPM", "250000", 250_000),
            (Dimension::InputTokensPerMinute, "ITPM", "100_000", 100_000),
            (Dimension::OutputTokensPerMinute, "OTPM", "20000", 20_000),
            (Dimension::RequestsPerDay, "RPD", "5_000", 5_000),
            (Dimension::TokensPerDay, "TPD", "90_000_000", 90_000_000),
            (Dimension::Concurrency, "CONCURRENCY", "8", 8),
            (Dimension::MinInterval, "MIN_INTERVAL_MS", "250", 250),
        ];
        for (dimension, suffix, value, parsed) in values {
            let var = format!("RATE_LIMITED_GPT_4O_MINI_{suffix}");
            let r = resolve_with("gpt-4o-mini-2024-07-18", &[(&var, value)]).unwrap();
            assert_eq!(r.quota.limit(dimension), Some(parsed), "{var}");
            assert_eq!(r.overrides, [dimension]);
            // The other built-in values stay.
            if dimension != Dimension::RequestsPerMinute {
                assert_eq!(r.quota.rpm, Some(500));
            }
            for bad in [
                "0",
                "-5",
                "1.5",
                "200k",
                "_100",
                "100_",
                "1__0",
                "lots",
                "99999999999999999999999",
            ] {
                assert_config(
                    resolve_with("gpt-4o-mini", &[(&var, bad)]),
                    &var,
                    bad,
                    "unlimited",
                );
            }
        }
        let r = resolve_with(
            "gpt-4o-mini",
            &[("RATE_LIMITED_GPT_4O_MINI_MIN_INTERVAL_MS", "250")],
        )
        .unwrap();
        assert_eq!(r.quota.min_interval, Some(Duration::from_millis(250)));
        assert_config(
            resolve_with(
                "gpt-4o-mini",
                &[("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "5000000000")],
            ),
            "RATE_LIMITED_GPT_4O_MINI_CONCURRENCY",
            "5000000000",
            "4294967295",
        );
    }

    #[test]
    fn unlimited_removes_a_builtin_limit() {
        let r = resolve_with(
            "gpt-4o-mini",
            &[("RATE_LIMITED_GPT_4O_MINI_RPD", "Unlimited")],
        )
        .unwrap();
        assert_eq!(r.quota.rpd, None);
        assert_eq!(r.quota.tpm, Some(200_000));
        assert_eq!(r.overrides, [Dimension::RequestsPerDay]);
    }

    #[test]
    fn overrides_apply_to_the_family_of_aliases() {
        let vars = [("RATE_LIMITED_GPT_4O_TPM", "60000")];
        for model in ["gpt-4o", "gpt-4o-2024-08-06", "chatgpt-4o-latest"] {
            let r = resolve_with(model, &vars).unwrap();
            assert_eq!(r.family.id, "gpt-4o");
            assert_eq!(r.quota.tpm, Some(60_000), "{model}");
        }
        // gpt-4o-mini is its own family: the gpt-4o override does not touch it.
        let r = resolve_with("gpt-4o-mini", &vars).unwrap();
        assert_eq!(r.quota.tpm, Some(200_000));
    }

    #[test]
    fn unknown_model_needs_overrides() {
        match resolve_with("gpt-5-nano-2025-08-07", &[]).unwrap_err() {
            err @ Error::UnknownModel { .. } => {
                let text = err.to_string();
                assert!(text.contains("RATE_LIMITED_GPT_5_NANO_RPM"), "{text}");
                assert!(text.contains("RATE_LIMITED_GPT_5_NANO_TPM"), "{text}");
                let Error::UnknownModel {
                    model,
                    provider,
                    tier,
                    family_env,
                    ..
                } = err
                else {
                    unreachable!()
                };
                assert_eq!(model, "gpt-5-nano-2025-08-07");
                assert_eq!(provider, "openai");
                assert_eq!(tier, "tier-1");
                assert_eq!(family_env, "GPT_5_NANO");
            }
            other => panic!("{other:?}"),
        }
        match resolve_with("claude-3-7-sonnet-latest", &[]).unwrap_err() {
            Error::UnknownModel { hint, .. } => {
                for dim in ["RPM", "ITPM", "OTPM"] {
                    assert!(
                        hint.contains(&format!("RATE_LIMITED_CLAUDE_SONNET_3_7_{dim}")),
                        "{hint}"
                    );
                }
            }
            other => panic!("{other:?}"),
        }
        match resolve_with("gemini-2.5-flash", &[]).unwrap_err() {
            Error::UnknownModel { hint, .. } => {
                for dim in ["RPM", "ITPM", "RPD"] {
                    assert!(
                        hint.contains(&format!("RATE_LIMITED_GEMINI_2_5_FLASH_{dim}")),
                        "{hint}"
                    );
                }
            }
            other => panic!("{other:?}"),
        }
        // A family known at other tiers says which.
        match resolve("gpt-4.1-mini", None, Some("tier-3"), &env(&[])).unwrap_err() {
            Error::UnknownModel { hint, .. } => {
                assert!(hint.contains("RATE_LIMITED_GPT_4_1_MINI_TPM"), "{hint}");
                assert!(hint.contains("(tier-1)"), "{hint}");
            }
            other => panic!("{other:?}"),
        }
        // Overrides define it.
        let r = resolve_with(
            "gpt-5-nano",
            &[
                ("RATE_LIMITED_GPT_5_NANO_RPM", "500"),
                ("RATE_LIMITED_GPT_5_NANO_TPM", "200_000"),
            ],
        )
        .unwrap();
        assert_eq!((r.quota.rpm, r.quota.tpm), (Some(500), Some(200_000)));
        assert_eq!(r.source, None);
        assert_eq!(
            r.overrides,
            [Dimension::RequestsPerMinute, Dimension::TokensPerMinute]
        );
        // Explicitly unlimited is a definition too (e.g. a local endpoint).
        let r = resolve(
            "local-llm",
            Some("openai"),
            None,
            &env(&[("RATE_LIMITED_LOCAL_LLM_RPM", "unlimited")]),
        )
        .unwrap();
        assert!(r.quota.is_unlimited());
    }

    #[test]
    fn azure_derives_rpm_from_tpm() {
        let azure = |deployment: &str, pairs: &[(&str, &str)]| {
            resolve(deployment, Some("azure"), None, &env(pairs))
        };
        let r = azure("Prod-GPT4o", &[("RATE_LIMITED_PROD_GPT4O_TPM", "240_000")]).unwrap();
        assert_eq!(r.family.id, "prod-gpt4o");
        assert_eq!((r.quota.rpm, r.quota.tpm), (Some(1_440), Some(240_000)));
        assert_eq!(r.overrides, [Dimension::TokensPerMinute]);
        let r = azure("o1", &[("RATE_LIMITED_O1_TPM", "60000")]).unwrap();
        assert_eq!(r.quota.rpm, Some(10));
        let r = azure("o1-preview", &[("RATE_LIMITED_O1_PREVIEW_TPM", "60000")]).unwrap();
        assert_eq!(r.quota.rpm, Some(10));
        let r = azure("o4-mini", &[("RATE_LIMITED_O4_MINI_TPM", "60000")]).unwrap();
        assert_eq!(r.quota.rpm, Some(60));
        for model in ["o3-mini", "o1-mini", "o3-pro"] {
            let var = format!("RATE_LIMITED_{}_TPM", crate::family::env_prefix(model));
            let r = azure(model, &[(&var, "100000")]).unwrap();
            assert_eq!(r.quota.rpm, Some(10), "{model}");
        }
        // An explicit RPM wins, even `unlimited`.
        let r = azure(
            "chat",
            &[
                ("RATE_LIMITED_CHAT_TPM", "10000"),
                ("RATE_LIMITED_CHAT_RPM", "7"),
            ],
        )
        .unwrap();
        assert_eq!(r.quota.rpm, Some(7));
        let r = azure(
            "chat",
            &[
                ("RATE_LIMITED_CHAT_TPM", "10000"),
                ("RATE_LIMITED_CHAT_RPM", "unlimited"),
            ],
        )
        .unwrap();
        assert_eq!(r.quota.rpm, None);
        // No table: Azure needs the deployment's quota.
        match azure("gpt-4o", &[]).unwrap_err() {
            Error::UnknownModel { hint, .. } => {
                assert!(hint.contains("RATE_LIMITED_GPT_4O_TPM"), "{hint}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(azure_rpm_from_tpm("tiny", 100), 1);
    }

    #[test]
    fn fine_tunes_resolve_to_base_limits() {
        let r = resolve_with("ft:gpt-4o-mini-2024-07-18:org::abc123", &[]).unwrap();
        assert_eq!(r.family.id, "gpt-4o-mini");
        assert_eq!(r.quota.tpm, Some(200_000));
    }

    #[test]
    fn variable_names() {
        let family = LimitFamily::of(Provider::OpenAi, "gpt-4.1");
        assert_eq!(
            limit_var(&family, Dimension::TokensPerMinute),
            "RATE_LIMITED_GPT_4_1_TPM"
        );
        assert_eq!(
            limit_var(&family, Dimension::MinInterval),
            "RATE_LIMITED_GPT_4_1_MIN_INTERVAL_MS"
        );
        assert_eq!(
            provider_tier_var(Provider::Gemini),
            "RATE_LIMITED_GEMINI_TIER"
        );
    }
}
