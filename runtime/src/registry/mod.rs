//! The process-wide map from model ids to the one limiter of their limit family, and the
//! scoped registries tests use instead of it.
//!
//! Here the map and how a family's limiter and state are built; `policy` holds what a new
//! family is given (price, budget, breaker), `pools` the deployment pools built from families,
//! `scope` which registry is current.

mod policy;
mod pools;
mod scope;

use policy::{Lookup, Overrides};
pub use scope::{
    fresh_registry, fresh_registry_with_env, spawn_scoped, stats_snapshot, ScopeGuard,
};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;

use crate::config::pool::PoolConfig;
use crate::config::{self, ModelProfile, Settings};
use crate::family::feedback::FamilyFeedback;
use crate::family::spend::Ledger;
use crate::family::state::{FamilyPolicy, FamilyState};
use crate::family::stats::Stats;
use crate::limiter::Limiter;
use crate::model::limit_family::LimitFamily;
use crate::model::prices::Price;
use crate::pool::Pool;
use crate::sync::Locked;
use crate::units::error::Error;
use crate::units::money::SpendLimit;
use crate::units::tenant::Tenant;

/// Where limiters live: one per (provider, limit family, tier), shared by every model id that
/// maps to that family (`gpt-4o` and `gpt-4o-2024-08-06` wait on the same limiter). What guards
/// the family's money and health (its budget, breaker and stats) is one per (provider, limit
/// family), whatever the tier: a family budget binds the calls of every tier together.
///
/// Every `#[rate_limited]` call uses [`Registry::current`]: the process-wide registry, which
/// reads the process environment, unless the current task is bound to another one
/// ([`Registry::bind`]) or the current thread has a scoped one ([`Registry::scope`]); tests use
/// those so that they never share limiter state.
///
/// Cloning is cheap; clones share the same limiters.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    lookup: Box<Lookup>,
    settings: OnceLock<Result<Settings, Error>>,
    /// By the call's own words (model, provider, tier), so the hot path skips resolution.
    by_call: DashMap<CallKey, ModelLimiter>,
    /// By family and tier, so aliases share one limiter.
    by_family: DashMap<FamilyKey, FamilyEntry>,
    /// By family alone: the state every tier's limiter of the family shares.
    states: DashMap<LimitFamily, Arc<FamilyState>>,
    /// [`Registry::learn_limits`], over `RATE_LIMITED_LEARN_LIMITS`.
    learn_limits: OnceLock<bool>,
    /// Prices and budgets set in code, over the env.
    overrides: Mutex<Overrides>,
    /// The process-wide budget, created with the first family.
    process_budget: OnceLock<Arc<Mutex<Ledger>>>,
    /// Pools defined in code ([`Registry::with_pool`]), by lower-case name, over the env.
    pool_configs: Mutex<HashMap<String, PoolConfig>>,
    /// Pools built so far, by lower-case name.
    pools: DashMap<String, Pool>,
}

#[derive(Clone)]
struct FamilyEntry {
    limiter: Limiter,
    feedback: Arc<FamilyFeedback>,
    state: Arc<FamilyState>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CallKey {
    model: Box<str>,
    provider: Option<Box<str>>,
    tier: Option<Box<str>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct FamilyKey {
    family: LimitFamily,
    tier: String,
}

/// The limiter a model draws on, with the profile its calls are estimated and settled by.
#[derive(Clone, Debug)]
pub struct ModelLimiter {
    /// The shared limiter of the model's family.
    pub limiter: Limiter,
    /// The model's family, tier, quota and provider rules.
    pub profile: Arc<ModelProfile>,
    /// What the family has learned from its server's answers.
    pub(crate) feedback: Arc<FamilyFeedback>,
    /// The family's breaker, budgets and stats.
    pub(crate) state: Arc<FamilyState>,
}

impl ModelLimiter {
    /// How much more than its own estimate this family's server has been seen to charge: the
    /// factor later prompt estimates are raised by (1.0 until a server counts more; at most
    /// [`MAX_CORRECTION`](crate::family::feedback::MAX_CORRECTION), the excess halving every
    /// [`CORRECTION_HALF_LIFE`](crate::family::feedback::CORRECTION_HALF_LIFE)). With the Redis backend
    /// it includes what the family's other processes have shared.
    pub fn charge_correction(&self) -> f64 {
        self.feedback.correction_factor()
    }
}

impl Registry {
    /// A registry that reads limits and settings from the process environment.
    pub fn from_process_env() -> Self {
        Registry::with_lookup(config::process_env)
    }

    /// A registry that reads `RATE_LIMITED_*` variables from `vars` only, never from the
    /// process environment (so tests can configure limits without touching global state).
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::Registry;
    /// let registry = Registry::with_env([("RATE_LIMITED_MY_MODEL_RPM", "60")]);
    /// let model = registry.limiter("openai/my-model").unwrap();
    /// assert_eq!(model.limiter.quota().rpm, Some(60));
    /// ```
    pub fn with_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Registry::with_lookup(move |name| vars.get(name).cloned())
    }

    /// A registry that reads variables through `lookup`.
    pub fn with_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Registry {
            inner: Arc::new(Inner {
                lookup: Box::new(lookup),
                settings: OnceLock::new(),
                by_call: DashMap::new(),
                by_family: DashMap::new(),
                states: DashMap::new(),
                learn_limits: OnceLock::new(),
                overrides: Mutex::new(Overrides::default()),
                process_budget: OnceLock::new(),
                pool_configs: Mutex::new(HashMap::new()),
                pools: DashMap::new(),
            }),
        }
    }

    /// Adopts the limits servers report in their rate-limit headers when they differ from the
    /// configured tier, higher ones included (lower ones are always adopted), whatever
    /// `RATE_LIMITED_LEARN_LIMITS` says. Call it before the first model is looked up: families
    /// created earlier keep the setting they were created with.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::Registry;
    /// let registry = Registry::with_env([("RATE_LIMITED_MY_MODEL_RPM", "60")]).learn_limits(true);
    /// assert!(registry.settings().unwrap().learn_limits);
    /// ```
    #[must_use]
    pub fn learn_limits(self, learn: bool) -> Self {
        let _ = self.inner.learn_limits.set(learn);
        self
    }

    /// Limits what the whole process may use, over `RATE_LIMITED_BUDGET_TOKENS` and
    /// `RATE_LIMITED_BUDGET_USD`. Call it before the first model is looked up.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::{spend::SpendLimit, Registry};
    /// let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")])
    ///     .spend_limit(SpendLimit::usd(5.0));
    /// registry.limiter("gpt-4o").unwrap();
    /// assert_eq!(registry.stats().budget_left.usd, Some(5.0));
    /// ```
    #[must_use]
    pub fn spend_limit(self, limit: SpendLimit) -> Self {
        self.overrides().budget = Some(limit);
        self
    }

    /// Limits what the family `family` (its id, `gpt-4o`) may use, over
    /// `RATE_LIMITED_<FAMILY>_BUDGET_TOKENS` and `_BUDGET_USD`. Call it before that family is
    /// first used.
    #[must_use]
    pub fn family_spend_limit(self, family: &str, limit: SpendLimit) -> Self {
        self.overrides()
            .family_budgets
            .insert(family.to_ascii_lowercase(), limit);
        self
    }

    /// Limits what `tenant` may use of the family `family` (its id, `gpt-4o`), over
    /// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_TOKENS` and `_TENANT_BUDGET_USD` (every tenant's
    /// budget). Counted as a family's budget is, over the run; a call past it fails with
    /// [`Error::BudgetExhausted`] naming the tenant. Call it before that family is first used.
    #[must_use]
    pub fn tenant_spend_limit(
        self,
        family: &str,
        tenant: impl Into<Tenant>,
        limit: SpendLimit,
    ) -> Self {
        self.overrides()
            .tenant_budgets
            .entry(family.to_ascii_lowercase())
            .or_default()
            .insert(tenant.into(), limit);
        self
    }

    /// Sets the price of the family `family` (its id, `gpt-4o`), over
    /// `RATE_LIMITED_<FAMILY>_PRICE` and the built-in table. Call it before that family is
    /// first used.
    #[must_use]
    pub fn price(self, family: &str, price: Price) -> Self {
        self.overrides()
            .prices
            .insert(family.to_ascii_lowercase(), price);
        self
    }

    fn overrides(&self) -> std::sync::MutexGuard<'_, Overrides> {
        self.inner.overrides.locked()
    }

    /// What every family used so far has done: waits, retries, 429s, breaker, tokens, cost and
    /// budgets. Cheap: one short lock per family.
    pub fn stats(&self) -> Stats {
        let mut families: Vec<_> = self
            .inner
            .states
            .iter()
            .map(|entry| entry.value().snapshot())
            .collect();
        families.sort_by(|a, b| (&a.provider, &a.family).cmp(&(&b.provider, &b.family)));
        let budget_left = self
            .inner
            .process_budget
            .get()
            .map(|ledger| ledger.locked().left())
            .unwrap_or_else(|| {
                let limit = self.process_spend_limit().unwrap_or_default();
                Ledger::new("the process-wide", limit).left()
            });
        Stats {
            families,
            budget_left,
        }
    }

    fn process_spend_limit(&self) -> Result<SpendLimit, Error> {
        match self.overrides().budget {
            Some(limit) => Ok(limit),
            None => Ok(self.settings()?.budget),
        }
    }

    /// The policy of a new family (see [`policy::family_policy`]).
    fn family_policy(
        &self,
        family: &LimitFamily,
        settings: &Settings,
    ) -> Result<FamilyPolicy, Error> {
        let process = self.process_spend_limit()?;
        policy::family_policy(
            &self.overrides(),
            &*self.inner.lookup,
            family,
            settings,
            process,
        )
    }

    /// Builds `model`'s tokenizer now, off the executor, and creates its family's limiter, so
    /// that the first call pays neither. Cheap once done.
    ///
    /// # Errors
    /// As [`Registry::limiter`].
    pub async fn warm_up(&self, model: &str) -> Result<(), Error> {
        let found = self.limiter(model)?;
        found.profile.encoding.ready().await;
        Ok(())
    }

    /// The settings (headroom, retry budget, maximum retry-after), read once.
    ///
    /// # Errors
    /// [`Error::Config`] if a variable is malformed.
    pub fn settings(&self) -> Result<Settings, Error> {
        self.inner
            .settings
            .get_or_init(|| Settings::from_lookup(&*self.inner.lookup))
            .clone()
            .map(|mut settings| {
                if let Some(learn) = self.inner.learn_limits.get() {
                    settings.learn_limits = *learn;
                }
                settings
            })
    }

    /// The limiter `model` draws on, creating it on first use; the provider comes from a
    /// prefix (`openai/..`, `azure/..`) or the model name, as with the attribute, and the tier
    /// from the environment.
    ///
    /// # Errors
    /// See [`Registry::limiter_with`].
    pub fn limiter(&self, model: &str) -> Result<ModelLimiter, Error> {
        self.limiter_with(model, None, None)
    }

    /// The limiter `model` draws on, creating it on first use.
    ///
    /// `provider` and `tier` override what would be inferred or read from the environment.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed variable or argument, [`Error::UnknownModel`] for a
    /// model with no built-in limits and no variable defining them.
    pub fn limiter_with(
        &self,
        model: &str,
        provider: Option<&str>,
        tier: Option<&str>,
    ) -> Result<ModelLimiter, Error> {
        let key = CallKey {
            model: model.into(),
            provider: provider.map(Into::into),
            tier: tier.map(Into::into),
        };
        if let Some(found) = self.inner.by_call.get(&key) {
            return Ok(found.clone());
        }
        let settings = self.settings()?;
        let profile = config::resolve(model, provider, tier, &settings, &*self.inner.lookup)?;
        let entry = self.family_entry(&profile, &settings)?;
        let found = ModelLimiter {
            limiter: entry.limiter,
            profile: Arc::new(profile),
            feedback: entry.feedback,
            state: entry.state,
        };
        self.inner.by_call.insert(key, found.clone());
        Ok(found)
    }

    /// The limiter, feedback and state of `profile`'s family at its tier, creating them on
    /// first use.
    fn family_entry(
        &self,
        profile: &ModelProfile,
        settings: &Settings,
    ) -> Result<FamilyEntry, Error> {
        let family_key = FamilyKey {
            family: profile.family.clone(),
            tier: profile.tier.clone(),
        };
        let backend = crate::store::Backend::from_settings(settings, &*self.inner.lookup)?;
        let entry = self
            .inner
            .by_family
            .entry(family_key)
            .or_try_insert_with(|| {
                // Build the tokenizer now, off the request path, for the calls to come.
                profile.encoding.warm_in_background();
                let backed = backend.limiter(profile)?;
                let feedback = FamilyFeedback::new(
                    profile.family.clone(),
                    &backed,
                    settings.learn_limits,
                    !profile.window_configured,
                );
                let state = self.family_state(&profile.family, settings)?;
                state.add_tier(&profile.tier);
                #[cfg(feature = "redis")]
                if let Some(shared) = &backed.shared {
                    state.share_tenant_budgets(shared.clone());
                }
                let limiter = backed.limiter;
                Ok::<_, Error>(FamilyEntry {
                    limiter,
                    feedback: Arc::new(feedback),
                    state,
                })
            })?
            .clone();
        Ok(entry)
    }

    /// The state of `family`, shared by its limiters of every tier, creating it on first use.
    fn family_state(
        &self,
        family: &LimitFamily,
        settings: &Settings,
    ) -> Result<Arc<FamilyState>, Error> {
        let state = self
            .inner
            .states
            .entry(family.clone())
            .or_try_insert_with(|| {
                let policy = self.family_policy(family, settings)?;
                let process_budget = self.process_budget()?;
                let unlimited = process_budget.locked().is_unlimited();
                let process_budget = (!unlimited).then_some(process_budget);
                Ok::<_, Error>(Arc::new(FamilyState::new(
                    family.clone(),
                    policy,
                    process_budget,
                )))
            })?;
        Ok(Arc::clone(&state))
    }

    fn process_budget(&self) -> Result<Arc<Mutex<Ledger>>, Error> {
        if let Some(ledger) = self.inner.process_budget.get() {
            return Ok(Arc::clone(ledger));
        }
        let limit = self.process_spend_limit()?;
        Ok(Arc::clone(self.inner.process_budget.get_or_init(|| {
            Arc::new(Mutex::new(Ledger::new("the process-wide", limit)))
        })))
    }

    /// Every limiter created so far, with its family and tier.
    pub fn limiters(&self) -> Vec<(LimitFamily, String, Limiter)> {
        self.inner
            .by_family
            .iter()
            .map(|e| {
                (
                    e.key().family.clone(),
                    e.key().tier.clone(),
                    e.value().limiter.clone(),
                )
            })
            .collect()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.inner.by_family.len())
            .finish_non_exhaustive()
    }
}

/// Registries that share limits through Redis: built here, above the store, so the store never
/// names the registry.
#[cfg(feature = "redis")]
impl crate::store::RedisConfig {
    /// A registry that shares limits through this Redis and reads every other
    /// `RATE_LIMITED_*` variable from the process environment.
    pub fn registry(self) -> Registry {
        Registry::with_lookup(move |name| self.var(name).or_else(|| config::process_env(name)))
    }

    /// Like [`registry`](Self::registry), reading other variables from `vars` only.
    pub fn registry_with_env<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Registry
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Registry::with_lookup(move |name| self.var(name).or_else(|| vars.get(name).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_share_one_limiter_and_tiers_do_not() {
        let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-2")]);
        let a = registry.limiter("gpt-4o").unwrap();
        let b = registry.limiter("gpt-4o-2024-08-06").unwrap();
        let c = registry
            .limiter_with("gpt-4o", None, Some("tier-1"))
            .unwrap();
        a.limiter.hold_for(std::time::Duration::from_secs(1));
        assert_eq!(registry.limiters().len(), 2);
        assert_eq!(b.limiter.quota(), a.limiter.quota());
        assert_ne!(c.limiter.quota(), a.limiter.quota());
        // The budget, breaker and stats are the family's, whatever the tier.
        assert!(Arc::ptr_eq(&a.state, &c.state));
        assert_eq!(registry.stats().families.len(), 1);
    }

    #[test]
    fn scoped_registries_nest_and_unwind() {
        let outer = Registry::with_env([("RATE_LIMITED_M_RPM", "1")]);
        let inner = Registry::with_env([("RATE_LIMITED_M_RPM", "2")]);
        let rpm = || {
            Registry::current()
                .limiter_with("m", Some("openai"), None)
                .map(|m| m.limiter.quota().rpm)
        };
        let g1 = outer.scope();
        assert_eq!(rpm(), Ok(Some(1)));
        {
            let _g2 = inner.scope();
            assert_eq!(rpm(), Ok(Some(2)));
        }
        assert_eq!(rpm(), Ok(Some(1)));
        drop(g1);
        assert!(matches!(rpm(), Err(Error::UnknownModel { .. })) || rpm().is_ok());
    }

    #[test]
    fn a_malformed_setting_is_reported_by_settings() {
        let registry = Registry::with_env([("RATE_LIMITED_HEADROOM", "1.5")]);
        let err = registry.settings().unwrap_err();
        assert!(err.to_string().contains("RATE_LIMITED_HEADROOM"), "{err}");
    }

    #[test]
    fn the_provider_is_inferred_or_read_from_a_prefix() {
        let registry = Registry::with_env([("RATE_LIMITED_MY_MODEL_RPM", "60")]);
        let claude = registry.limiter("claude-sonnet-4-5").unwrap();
        assert_eq!(
            claude.profile.family.provider,
            crate::config::Provider::Anthropic
        );
        let prefixed = registry.limiter("openai/my-model").unwrap();
        assert_eq!(prefixed.limiter.quota().rpm, Some(60));
        // Prefixed and bare ids share the family's one limiter.
        let bare = registry
            .limiter_with("my-model", Some("openai"), None)
            .unwrap();
        bare.limiter.hold_for(std::time::Duration::from_secs(1));
        assert_eq!(registry.limiters().len(), 2);
        assert!(matches!(
            registry.limiter("my-model"),
            Err(Error::UnknownProvider { model, .. }) if model == "my-model"
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bound_futures_see_their_registry_on_any_thread() {
        let registry = Registry::with_env([("RATE_LIMITED_M_RPM", "7")]);
        let rpm = || {
            Registry::current()
                .limiter("openai/m")
                .map(|m| m.limiter.quota().rpm)
        };
        let from_spawn = registry.spawn(async move { rpm() }).await.unwrap();
        assert_eq!(from_spawn, Ok(Some(7)));
        // A thread scope reaches a spawned task through spawn_scoped.
        let _scope = Registry::with_env([("RATE_LIMITED_M_RPM", "8")]).scope();
        let scoped = spawn_scoped(async move { rpm() }).await.unwrap();
        assert_eq!(scoped, Ok(Some(8)));
        // A bound future wins over the thread scope.
        assert_eq!(registry.bind(async { rpm() }).await, Ok(Some(7)));
    }
}
