//! Deployment pools in a registry: defined in code or by the environment, each deployment
//! built as a family of its own.

use std::sync::Arc;

use super::Registry;
use crate::config::pool::PoolConfig;
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
    /// # Errors
    /// [`Error::Config`] naming the variable (and the deployment) for an undefined or malformed
    /// pool; [`Error::UnknownModel`] for a deployment with no limits.
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
        let pool = Pool::new(
            config.name(),
            config.routing(),
            config.cooldown(),
            deployments,
        );
        Ok(self.inner.pools.entry(key).or_insert(pool).clone())
    }
}
