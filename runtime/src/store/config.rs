//! How a process reaches the shared store: the URL, the key prefix and the failure policy,
//! read from `RATE_LIMITED_REDIS_*` variables or built in code.

use std::fmt;
use std::time::Duration;

use crate::config::{redact_url, REDIS_URL_VAR};
use crate::units::error::Error;

/// `RATE_LIMITED_REDIS_PREFIX`: the first part of every key (several apps on one Redis).
pub const REDIS_PREFIX_VAR: &str = "RATE_LIMITED_REDIS_PREFIX";
/// `RATE_LIMITED_REDIS_ON_FAILURE`: `local` (default) or `closed`.
pub const REDIS_ON_FAILURE_VAR: &str = "RATE_LIMITED_REDIS_ON_FAILURE";
/// `RATE_LIMITED_REDIS_FALLBACK_SHARE`: the share of each limit the local fallback uses.
pub const REDIS_FALLBACK_SHARE_VAR: &str = "RATE_LIMITED_REDIS_FALLBACK_SHARE";
/// `RATE_LIMITED_REDIS_TIMEOUT_MS`: the bound on every Redis call, in milliseconds.
pub const REDIS_TIMEOUT_MS_VAR: &str = "RATE_LIMITED_REDIS_TIMEOUT_MS";
/// `RATE_LIMITED_REDIS_LEASE_MS`: how long a concurrency slot outlives a silent process.
pub const REDIS_LEASE_MS_VAR: &str = "RATE_LIMITED_REDIS_LEASE_MS";
/// `RATE_LIMITED_REDIS_CLUSTER`: `true` when `RATE_LIMITED_REDIS_URL` names nodes of a Redis
/// Cluster (one or more seed URLs, comma-separated); `false` (default) for one server.
pub const REDIS_CLUSTER_VAR: &str = "RATE_LIMITED_REDIS_CLUSTER";

/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "ratelimited";
/// The default share of each limit used while Redis is unreachable.
pub const DEFAULT_FALLBACK_SHARE: f64 = 0.25;
/// The default bound on every Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// The default lifetime of a concurrency lease that is no longer renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What a limiter does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Admit through an in-process limiter at [`RedisConfig::fallback_share`] of each limit
    /// (the default): the service keeps running, and other processes doing the same stay
    /// under the real limit together when the share is 1 / their number.
    Local,
    /// Fail every call with [`Error::BackendUnavailable`] (for strict spend caps).
    Closed,
}

/// Where and how limits are shared through Redis (feature `redis`).
///
/// Built from `RATE_LIMITED_REDIS_*` variables, or in code:
///
/// ```no_run
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::redis::{OnFailure, RedisConfig};
///
/// let registry = RedisConfig::new("redis://127.0.0.1:6379/0")
///     .prefix("billing-app")
///     .on_failure(OnFailure::Local)
///     .fallback_share(0.25)
///     .timeout(Duration::from_millis(100))
///     .registry();
/// let model = registry.limiter("gpt-4o-mini").unwrap();
///
/// // Redis Cluster: any of its nodes, or several (the client finds the others).
/// let cluster = RedisConfig::new("redis://10.0.0.1:6379,redis://10.0.0.2:6379").cluster(true);
/// ```
#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    url: String,
    prefix: String,
    on_failure: OnFailure,
    fallback_share: f64,
    timeout: Duration,
    lease: Duration,
    cluster: bool,
}

impl RedisConfig {
    /// Shares limits through the Redis at `url` (`redis://`, `redis+unix://`, ..), with the
    /// defaults: prefix `ratelimited`, local fallback at 0.25 of each limit, 100 ms timeout,
    /// 30 s leases. The URL is checked when the registry first builds a limiter. For a Redis
    /// Cluster (see [`cluster`](Self::cluster)), `url` may list several seed nodes,
    /// comma-separated.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            on_failure: OnFailure::Local,
            fallback_share: DEFAULT_FALLBACK_SHARE,
            timeout: DEFAULT_REDIS_TIMEOUT,
            lease: DEFAULT_LEASE,
            cluster: false,
        }
    }

    /// Sets the key prefix: keys are `<prefix>:{<provider>:<family>:<tier>}:<dimension>`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets what happens while Redis cannot be reached.
    #[must_use]
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// Sets the share of each limit, in (0, 1], that the local fallback admits.
    #[must_use]
    pub fn fallback_share(mut self, share: f64) -> Self {
        self.fallback_share = share;
        self
    }

    /// Sets the bound on every Redis call.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a concurrency slot stays taken after its process stops renewing it.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Says whether the URL names nodes of a Redis Cluster: a cluster client then follows
    /// the family's slot from node to node (MOVED and ASK redirections, a node that left).
    #[must_use]
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// What happens while Redis cannot be reached.
    pub fn failure_policy(&self) -> OnFailure {
        self.on_failure
    }

    /// The share of each limit the local fallback admits.
    pub fn share(&self) -> f64 {
        self.fallback_share
    }

    /// The bound on every Redis call.
    pub fn call_timeout(&self) -> Duration {
        self.timeout
    }

    /// How long a concurrency slot outlives a process that stopped renewing it.
    pub fn lease_time(&self) -> Duration {
        self.lease
    }

    /// Whether the URL names nodes of a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// This configuration as the variable `name` would spell it: one parser serves both.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        Some(match name {
            REDIS_URL_VAR => self.url.clone(),
            REDIS_PREFIX_VAR => self.prefix.clone(),
            REDIS_ON_FAILURE_VAR => match self.on_failure {
                OnFailure::Local => "local".to_owned(),
                OnFailure::Closed => "closed".to_owned(),
            },
            REDIS_FALLBACK_SHARE_VAR => self.fallback_share.to_string(),
            REDIS_TIMEOUT_MS_VAR => self.timeout.as_millis().to_string(),
            REDIS_LEASE_MS_VAR => self.lease.as_millis().to_string(),
            REDIS_CLUSTER_VAR => self.cluster.to_string(),
            _ => return None,
        })
    }

    /// Reads the `RATE_LIMITED_REDIS_*` variables that go with `url`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first malformed variable and what it accepts.
    pub(crate) fn from_lookup(
        url: String,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut config = RedisConfig::new(url);
        if let Some(prefix) = get(REDIS_PREFIX_VAR) {
            let valid = prefix.len() <= 64
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
            if !valid {
                return Err(Error::config(
                    REDIS_PREFIX_VAR,
                    prefix,
                    "1 to 64 characters among letters, digits, `_`, `-`, `.` and `:` (no braces: \
                     the family's hash tag follows the prefix)",
                ));
            }
            config.prefix = prefix;
        }
        if let Some(policy) = get(REDIS_ON_FAILURE_VAR) {
            config.on_failure =
                match policy.to_ascii_lowercase().as_str() {
                    "local" => OnFailure::Local,
                    "closed" => OnFailure::Closed,
                    _ => return Err(Error::config(
                        REDIS_ON_FAILURE_VAR,
                        policy,
                        "`local` (fall back to an in-process limiter at a share of each limit) \
                         or `closed` (fail calls while Redis is unreachable)",
                    )),
                };
        }
        if let Some(share) = get(REDIS_FALLBACK_SHARE_VAR) {
            config.fallback_share = share
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1.0)
                .ok_or_else(|| {
                    Error::config(
                        REDIS_FALLBACK_SHARE_VAR,
                        &share,
                        "a number greater than 0 and at most 1, the share of each limit one \
                         process may use while Redis is down (e.g. 0.25 for 4 processes)",
                    )
                })?;
        }
        if let Some(ms) = get(REDIS_TIMEOUT_MS_VAR) {
            config.timeout = parse_ms(&ms, 1, 60_000).ok_or_else(|| {
                Error::config(
                    REDIS_TIMEOUT_MS_VAR,
                    &ms,
                    "a whole number of milliseconds from 1 to 60000 (e.g. 100)",
                )
            })?;
        }
        if let Some(ms) = get(REDIS_LEASE_MS_VAR) {
            config.lease = parse_ms(&ms, 100, 86_400_000).ok_or_else(|| {
                Error::config(
                    REDIS_LEASE_MS_VAR,
                    &ms,
                    "a whole number of milliseconds from 100 to 86400000 (e.g. 30000)",
                )
            })?;
        }
        if let Some(cluster) = get(REDIS_CLUSTER_VAR) {
            config.cluster = match cluster.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(Error::config(
                        REDIS_CLUSTER_VAR,
                        cluster,
                        "1, true, yes or on when RATE_LIMITED_REDIS_URL names Redis Cluster \
                         nodes (one or more, comma-separated); 0, false, no or off (the \
                         default) for one Redis server",
                    ))
                }
            };
        }
        Ok(config)
    }
}

fn parse_ms(value: &str, min: u64, max: u64) -> Option<Duration> {
    value
        .replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|ms| (min..=max).contains(ms))
        .map(Duration::from_millis)
}

impl fmt::Debug for RedisConfig {
    /// Like a derived `Debug`, with the Redis password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("on_failure", &self.on_failure)
            .field("fallback_share", &self.fallback_share)
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<RedisConfig, Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RedisConfig::from_lookup("redis://127.0.0.1:1/0".to_owned(), &move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_when_unset() {
        let config = read(&[]).unwrap();
        assert_eq!(config, RedisConfig::new("redis://127.0.0.1:1/0"));
        assert_eq!(config.key_prefix(), "ratelimited");
        assert_eq!(config.failure_policy(), OnFailure::Local);
        assert_eq!(config.call_timeout(), Duration::from_millis(100));
    }

    #[test]
    fn every_variable_is_read() {
        let config = read(&[
            (REDIS_PREFIX_VAR, "app-1"),
            (REDIS_ON_FAILURE_VAR, "Closed"),
            (REDIS_FALLBACK_SHARE_VAR, "0.5"),
            (REDIS_TIMEOUT_MS_VAR, "250"),
            (REDIS_LEASE_MS_VAR, "2_000"),
            (REDIS_CLUSTER_VAR, "Yes"),
        ])
        .unwrap();
        let expected = RedisConfig::new("redis://127.0.0.1:1/0")
            .prefix("app-1")
            .on_failure(OnFailure::Closed)
            .fallback_share(0.5)
            .timeout(Duration::from_millis(250))
            .lease(Duration::from_secs(2))
            .cluster(true);
        assert_eq!(config, expected);
        // The builder round-trips through the same parser.
        let again = RedisConfig::from_lookup(expected.url.clone(), &|n| expected.var(n)).unwrap();
        assert_eq!(again, expected);
    }

    #[test]
    fn malformed_values_name_the_variable_and_what_is_accepted() {
        for (var, bad, accepted) in [
            (REDIS_PREFIX_VAR, "a{b}", "no braces"),
            (REDIS_ON_FAILURE_VAR, "open", "`local`"),
            (REDIS_FALLBACK_SHARE_VAR, "0", "greater than 0"),
            (REDIS_FALLBACK_SHARE_VAR, "1.5", "at most 1"),
            (REDIS_TIMEOUT_MS_VAR, "0", "from 1 to 60000"),
            (REDIS_LEASE_MS_VAR, "fast", "milliseconds"),
            (REDIS_CLUSTER_VAR, "cluster", "Redis Cluster nodes"),
        ] {
            let err = read(&[(var, bad)]).unwrap_err().to_string();
            assert!(
                err.contains(var) && err.contains(bad) && err.contains(accepted),
                "{err}"
            );
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let text = format!("{:?}", RedisConfig::new("redis://:hunter2@cache:6379"));
        assert!(!text.contains("hunter2"), "{text}");
        let seeds = RedisConfig::new("redis://:hunter2@a:7000,redis://:hunter3@b:7001");
        let text = format!("{:?}", seeds.cluster(true));
        assert!(!text.contains("hunter"), "{text}");
    }
}
