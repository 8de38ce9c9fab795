//! Where a family's limiter keeps its state: in this process, or (feature `redis`) in a Redis
//! shared by every process and machine pointed at it.
//!
//! With `RATE_LIMITED_REDIS_URL` set, each limit family's buckets live in Redis under one hash
//! tag, charged by one Lua script on the server's clock (see `family.lua`): a reservation is
//! charged at once and told the exact wait, so the caller sleeps once. Within a process,
//! waiters queue by priority lane, within a lane by tenant turns, and go to Redis in batches,
//! with at most one of them scheduled ahead at a time (see `batch.rs` and `sender.rs`).
//! Concurrency slots are leases that expire. Every call is bounded by a timeout, and while
//! Redis is away a breaker sends calls to a local limiter at a share of each limit (or fails
//! them, by configuration); a call Redis refuses (a script error) gets the same policy without
//! opening the breaker.
//!
//! A tenant's cap is charged in the same script call as the family's buckets, under the same
//! hash tag (see `tenants.rs`): a capped request is answered without being charged and without
//! stopping its batch, and waits until its cap has room.
//!
//! What is given back is given back exactly: a settle moves the units its reservation was
//! charged under the limits of that charge, a limit change keeps the units in use (the script
//! rescales a bucket once for the whole fleet), a reservation cancelled before its start also
//! gives back the place it pushed the other buckets to (when no reservation scheduled ahead
//! was charged after it), and an admission whose waiter left before reading it is refunded. A
//! batch that timed out is voided once Redis answers again: it never runs after that, and each
//! of its requests that holds concurrency slots or a place ahead gives them back (and its
//! charge, when failing closed; through the fallback its request went out, and the charge
//! counts it). A batch sent again is answered from the record of its process's last batch.
//!
//! What Redis does not know reaches it before more is admitted there (see `recovery.rs`):
//! what the fallback admitted while Redis was away (recorded in `recent.rs`), and, when Redis
//! comes back without its state (a new epoch), the recent spend, the live leases and the 429
//! hold. The fallback is kept as full as Redis at its share, so an outage starts with no burst,
//! and its waiters go back to Redis when it answers. Each admission carries its marks (the
//! buckets' units in use just after its charge), against which the server's count in the
//! answer is read, after the settles sent before it.
//!
//! **Redis 5.0 or later** is required: the script reads the server's `TIME` before it writes,
//! which Redis replicates as the script's effects, the default from 5.0 (Redis 3.2 and 4.0
//! would need `redis.replicate_commands()`). Nothing else in the script needs more than 3.0.2
//! (`ZADD .. XX`). The keys of a family share one hash tag, as Redis Cluster requires; with
//! `RATE_LIMITED_REDIS_CLUSTER` (or `RedisConfig::cluster`) the client is a cluster client
//! that follows the family's slot from node to node (see `connection.rs`).

use crate::config::Settings;
use crate::limiter::Limiter;
use crate::units::error::Error;

// Bottom up; rustfmt would sort adjacent `mod` lines.
#[cfg(feature = "redis")]
mod config;

#[cfg(feature = "redis")]
mod connection;

#[cfg(feature = "redis")]
mod limits;

#[cfg(feature = "redis")]
mod tenants;

#[cfg(feature = "redis")]
mod batch;

#[cfg(feature = "redis")]
mod recent;

#[cfg(feature = "redis")]
mod family;

#[cfg(feature = "redis")]
mod calls;

#[cfg(feature = "redis")]
mod recovery;

#[cfg(feature = "redis")]
mod held;

#[cfg(feature = "redis")]
mod sender;

#[cfg(feature = "redis")]
mod learned;

#[cfg(feature = "redis")]
mod budget;

#[cfg(feature = "redis")]
pub(crate) use budget::{BudgetAnswer, SharedLimit};
#[cfg(feature = "redis")]
pub use config::{
    OnFailure, RedisConfig, DEFAULT_FALLBACK_SHARE, DEFAULT_LEASE, DEFAULT_REDIS_PREFIX,
    DEFAULT_REDIS_TIMEOUT, REDIS_CLUSTER_VAR, REDIS_FALLBACK_SHARE_VAR, REDIS_LEASE_MS_VAR,
    REDIS_ON_FAILURE_VAR, REDIS_PREFIX_VAR, REDIS_TIMEOUT_MS_VAR,
};
#[cfg(feature = "redis")]
pub(crate) use family::SharedFamily;
#[cfg(feature = "redis")]
pub(crate) use learned::{Learned, CORRECTION_TTL};

/// Runs `work` on the current tokio runtime without waiting for it (updates to the shared
/// state that must not delay the caller); without a runtime it is dropped, logged at debug.
#[cfg(feature = "redis")]
pub(crate) fn spawn_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(work)),
        Err(_) => tracing::debug!("no tokio runtime: a shared limiter update was not sent"),
    }
}

/// A family's limiter, and the shared state it lives in when it is shared.
pub(crate) struct Backed {
    pub(crate) limiter: Limiter,
    /// The family's state in Redis, for what the family shares beyond the buckets (learned
    /// limits and the charge correction).
    #[cfg(feature = "redis")]
    pub(crate) shared: Option<SharedFamily>,
}

/// Where the limiters of one registry keep their state.
pub(crate) enum Backend {
    /// In this process only.
    Local,
    /// In Redis.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Backend {
    /// The backend `settings` ask for, with the other `RATE_LIMITED_REDIS_*` variables read
    /// through `lookup`.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed variable, or for a Redis URL in a build without the
    /// `redis` feature: limits the user believes shared must never silently stay local.
    pub(crate) fn from_settings(
        settings: &Settings,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Backend, Error> {
        let Some(url) = &settings.redis_url else {
            return Ok(Backend::Local);
        };
        #[cfg(feature = "redis")]
        {
            RedisConfig::from_lookup(url.clone(), lookup).map(Backend::Redis)
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = lookup;
            Err(Error::config(
                crate::config::REDIS_URL_VAR,
                crate::config::redact_url(url),
                "unset, or a build with the `redis` feature of ratelimited (this build keeps \
                 limits in-process only, so they would not be shared)",
            ))
        }
    }

    /// A limiter for `resolved`'s family on this backend.
    ///
    /// # Errors
    /// [`Error::Config`] for a Redis URL the client rejects.
    pub(crate) fn limiter(&self, resolved: &crate::config::ModelProfile) -> Result<Backed, Error> {
        let backed = self.backed(resolved)?;
        let cap = resolved.tenant_cap.clone();
        #[cfg(feature = "redis")]
        if let (Some(limit), Some(_)) = (cap.as_ref().and_then(|c| c.concurrency), &backed.shared) {
            let dimension = crate::units::cost::Dimension::Concurrency;
            return Err(Error::config(
                crate::config::tenant_limit_var(&resolved.family, dimension),
                limit.to_string(),
                "unset with RATE_LIMITED_REDIS_URL: the tenant caps of a family shared through \
                 Redis limit rates (RPM, TPM, ...), not concurrency",
            ));
        }
        backed.limiter.set_default_tenant_cap(cap)?;
        Ok(backed)
    }

    fn backed(&self, resolved: &crate::config::ModelProfile) -> Result<Backed, Error> {
        match self {
            Backend::Local => Ok(Backed {
                limiter: Limiter::new(resolved.quota.clone()),
                #[cfg(feature = "redis")]
                shared: None,
            }),
            #[cfg(feature = "redis")]
            Backend::Redis(config) => {
                let family = SharedFamily::new(
                    config,
                    resolved.family.provider.as_str(),
                    &resolved.family.id,
                    &resolved.tier,
                    &resolved.quota,
                )?;
                Ok(Backed {
                    limiter: Limiter::with_store(
                        resolved.quota.clone(),
                        std::sync::Arc::new(family.clone()),
                    ),
                    shared: Some(family),
                })
            }
        }
    }
}
