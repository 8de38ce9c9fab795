//! Deployment pools in a registry: defined in code or by the environment, each deployment
//! built as a family of its own.

use std::sync::{Arc, Mutex};

use dashmap::mapref::entry::Entry;

use super::Registry;
use crate::config::pool::PoolConfig;
use crate::config::price_var;
use crate::pool::{Deployment, Pool};
use crate::sync::Locked;
use crate::units::error::Error;

impl Registry {
    /// Defines a deployment pool in code, over a `RATE_LIMITED_POOL_<NAME>` of the same name.
    /// Call it before that pool is first used; a malformed pool is reported by
    /// [`Registry::pool`].
    #[must_use]
    pub fn with_pool(self, pool: PoolConfig) -> Self {
        self.inner
            .pool_configs
            .locked()
            .insert(pool.name().to_ascii_lowercase(), pool);
        self
    }

    /// The deployment pool `name`, building it on first use: from [`Registry::with_pool`], else
    /// from `RATE_LIMITED_POOL_<NAME>` and each deployment's variables (see
    /// [`config::pool`](crate::config::pool)). Each deployment gets its own limiter and family
    /// state, under the deployment's name.
    ///
    /// A pool budget ([`PoolConfig::budget`], else `RATE_LIMITED_POOL_<NAME>_BUDGET_TOKENS`
    /// and `_BUDGET_USD`) counts every call of its deployments' families from here on.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable (and the deployment) for an undefined or malformed
    /// pool, or a dollar budget on a pool with a deployment that has no price;
    /// [`Error::UnknownModel`] for a deployment with no limits.
    pub fn pool(&self, name: &str) -> Result<Pool, Error> {
        let key = name.trim().to_ascii_lowercase();
        if let Some(pool) = self.inner.pools.get(&key) {
            return Ok(pool.clone());
        }
        let settings = self.settings()?;
        let coded = self.inner.pool_configs.locked().get(&key).cloned();
        let variable = PoolConfig::var(name);
        let config = match coded {
            Some(config) => {
                config.check_names("Registry::with_pool", config.name())?;
                config
            }
            None => PoolConfig::from_lookup(name, &*self.inner.lookup)?.ok_or_else(|| {
                Error::config(
                    &variable,
                    "",
                    format!(
                        "the deployments of pool `{name}` in order (`east,west,ptu`), each with \
                         RATE_LIMITED_<DEPLOYMENT>_MODEL, or the pool defined in code with \
                         Registry::with_pool; it is unset"
                    ),
                )
            })?,
        };
        let mut deployments = Vec::new();
        for deployment in config.deployments() {
            let profile = deployment.resolve(config.name(), &settings, &*self.inner.lookup)?;
            let entry = self.family_entry(&profile, &settings)?;
            deployments.push(Deployment::new(
                deployment.clone(),
                entry.limiter,
                Arc::new(profile),
                entry.feedback,
                entry.state,
            ));
        }
        let budget = config.resolved_budget(&*self.inner.lookup)?;
        if let Some(unpriced) = deployments
            .iter()
            .find(|d| budget.is_some_and(|b| b.usd.is_some()) && !d.state.has_price())
        {
            let family = &unpriced.profile().family;
            return Err(Error::config(
                price_var(family),
                "",
                format!(
                    "a price for deployment `{}` of pool `{}` (e.g. input=2.5,cached=1.25,\
                     output=10, USD per million tokens): the pool has a dollar budget \
                     ({}_BUDGET_USD or PoolConfig::budget)",
                    unpriced.name(),
                    config.name(),
                    variable
                ),
            ));
        }
        let ledger =
            budget.map(|limit| Arc::new(Mutex::new(Pool::budget_ledger(config.name(), limit))));
        let pool = Pool::new(
            config.name(),
            config.routing(),
            config.cooldown(),
            deployments,
            ledger.clone(),
        );
        match self.inner.pools.entry(key) {
            Entry::Occupied(built) => Ok(built.get().clone()),
            Entry::Vacant(slot) => {
                // Only the pool that is kept counts on its deployments' families.
                if let Some(ledger) = &ledger {
                    for deployment in pool.deployments() {
                        deployment.state.share_budget(Arc::clone(ledger));
                    }
                }
                Ok(slot.insert(pool).clone())
            }
        }
    }
}
