//! Configuration from environment variables.
//!
//! | variable | meaning |
//! |---|---|
//! | `RATE_LIMITED_TIER` | default tier for every provider; default `tier-1` |
//! | `RATE_LIMITED_<PROVIDER>_TIER` | tier of one provider (`OPENAI`, `AZURE`, `ANTHROPIC`, `GEMINI`) |
//! | `RATE_LIMITED_<FAMILY>_<DIM>` | one limit of one family; DIM is `RPM`, `TPM`, `ITPM`, `OTPM`, `RPD`, `TPD`, `CONCURRENCY` or `MIN_INTERVAL_MS` |
//! | `RATE_LIMITED_<FAMILY>_TENANT_<DIM>` | the cap of every tenant of one family (DIM as above, no headroom; see [`Limiter::acquire_for`](crate::Limiter::acquire_for)) |
//! | `RATE_LIMITED_<FAMILY>_CHARGED` | when the server counts a request's tokens: `arrival` (default) or `response` (from the answer's usage; see [`Charged`](crate::units::quota::Charged)) |
//! | `RATE_LIMITED_<FAMILY>_WINDOW` | how the server counts the family's limits: `continuous` (default), or `fixed`/`sliding` (at most the limit in any window; see [`Window`](crate::units::quota::Window)) |
//! | `RATE_LIMITED_HEADROOM` | fraction of each limit to use, in (0, 1]; default 0.9 |
//! | `RATE_LIMITED_MAX_RETRIES` | default retry budget; default 6 |
//! | `RATE_LIMITED_MAX_RETRY_AFTER` | longest server-requested wait honoured, in seconds (decimals allowed); default 120 |
//! | `RATE_LIMITED_REDIS_URL` | `redis://`, `rediss://`, `redis+unix://` or `unix://` URL; unset = in-process |
//! | `RATE_LIMITED_BREAKER_FAILURES` | consecutive transient failures that open a family's breaker; default 10, 0 = off |
//! | `RATE_LIMITED_BREAKER_COOLDOWN_MS` | how long an open breaker refuses calls; default 30000 |
//! | `RATE_LIMITED_BUDGET_TOKENS`, `RATE_LIMITED_BUDGET_USD` | what the whole process may use; unset = unlimited |
//! | `RATE_LIMITED_<FAMILY>_BUDGET_TOKENS`, `RATE_LIMITED_<FAMILY>_BUDGET_USD` | what one family may use |
//! | `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_TOKENS`, `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_USD` | what each tenant may use of one family |
//! | `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD` | `total` (default) or `day`: over what the tenants' budgets count |
//! | `RATE_LIMITED_<FAMILY>_PRICE` | the family's price per 1M tokens: `input=2.5,cached=1.25,output=10` |
//! | `RATE_LIMITED_POOL_<NAME>` | a deployment pool: its deployments in order, each defined by `RATE_LIMITED_<DEPLOYMENT>_MODEL` and its own limits (see [`pool`]) |
//!
//! Precedence: attribute argument > env var > built-in table. The tier of a call is the
//! attribute's `tier`, else `RATE_LIMITED_<PROVIDER>_TIER`, else `RATE_LIMITED_TIER`, else
//! `tier-1`. Its quota is the built-in entry of its family at that tier (see the `tiers` module),
//! then each `RATE_LIMITED_<FAMILY>_<DIM>` replaces one dimension; for a family with no built-in
//! entry, those variables define it. FAMILY is the family id upper-cased with every
//! non-alphanumeric character as `_` (`gpt-4o-mini` → `GPT_4O_MINI`).
//!
//! Limit values are positive integers, with optional `_` digit separators (`200_000`); the word
//! `unlimited` removes a built-in limit. A malformed value is an [`Error::Config`](crate::Error::Config) naming the
//! variable, the value and what is accepted, never a silent fallback. A variable set to the
//! empty string (or only whitespace) counts as unset, the same as `VAR= command` in a shell:
//! an empty value says nothing, so there is nothing to reject.
//!
//! A model with neither a built-in entry nor any override is an [`Error::UnknownModel`](crate::Error::UnknownModel) whose
//! hint names the variables to set: the library does not guess limits.
//!
//! Every reader takes the environment as a lookup function, so tests can inject a map:
//!
//! ```
//! # use ratelimited_runtime::facade as ratelimited;
//! use std::collections::HashMap;
//! use ratelimited::config::{resolve, Settings};
//!
//! let env: HashMap<&str, &str> = [("RATE_LIMITED_GPT_4O_MINI_TPM", "150_000")].into();
//! let lookup = |name: &str| env.get(name).map(|v| v.to_string());
//! let settings = Settings::from_lookup(&lookup).unwrap();
//! let profile = resolve("gpt-4o-mini-2024-07-18", None, None, &settings, &lookup).unwrap();
//! assert_eq!(profile.family.id, "gpt-4o-mini");
//! assert_eq!(profile.tier, "tier-1");
//! assert_eq!(profile.quota.rpm, Some(500));
//! assert_eq!(profile.quota.tpm, Some(150_000));
//! assert_eq!(profile.quota.headroom, 0.9);
//! ```

use std::time::Duration;

use crate::units::cost::Dimension;

// Bottom up; rustfmt would sort adjacent `mod` lines.
#[cfg(test)]
mod test_env;

mod limits;

mod spend;

mod settings;

mod resolve;

pub mod pool;

pub use crate::answers::retry::MAX_RETRY_TIME;
pub use crate::model::limit_family::LimitFamily;
pub use crate::model::provider::{
    azure_rpm_from_tpm, Provider, CHARACTERS_PER_CHARGED_TOKEN, DEFAULT_MAX_TOKENS,
};
pub use limits::parse_limit;
pub use resolve::{resolve, resolve_tier, ModelProfile};
pub(crate) use settings::redact_url;
#[cfg(feature = "redis")]
pub(crate) use settings::split_urls;
pub use settings::Settings;
pub use spend::{
    family_budget_tokens_var, family_budget_usd_var, price_var, tenant_budget_period_var,
    tenant_budget_tokens_var, tenant_budget_usd_var, BREAKER_COOLDOWN_VAR, BREAKER_FAILURES_VAR,
    BUDGET_TOKENS_VAR, BUDGET_USD_VAR, DEFAULT_BREAKER_COOLDOWN, DEFAULT_BREAKER_FAILURES,
};
pub(crate) use spend::{read_budget_period, read_price, read_spend_limit};

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
/// `RATE_LIMITED_LEARN_LIMITS`: adopt the limits the server reports (`1`/`0`).
pub const LEARN_LIMITS_VAR: &str = "RATE_LIMITED_LEARN_LIMITS";

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

/// The variable that caps every tenant of `family` on `dimension`:
/// `RATE_LIMITED_<FAMILY>_TENANT_<DIM>` (see
/// [`Limiter::acquire_for`](crate::Limiter::acquire_for)).
pub fn tenant_limit_var(family: &LimitFamily, dimension: Dimension) -> String {
    format!(
        "RATE_LIMITED_{}_TENANT_{}",
        family.env_prefix(),
        dimension.env_suffix()
    )
}

/// A set value: `None` if unset, empty or only whitespace; otherwise the value trimmed.
pub(crate) fn get(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
