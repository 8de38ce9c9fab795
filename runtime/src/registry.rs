//! The process-wide map from model ids to the one limiter of their limit family, and the
//! scoped registries tests use instead of it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use once_cell::sync::Lazy;

use crate::config::{self, ModelProfile, Settings, SpendLimit};
use crate::cost::{built_in_price, Price};
use crate::error::Error;
use crate::family::LimitFamily;
use crate::family_state::{FamilyPolicy, FamilyState};
use crate::feedback::FamilyFeedback;
use crate::limiter::Limiter;
use crate::spend::Ledger;
use crate::stats::Stats;

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where limiters live: one per (provider, limit family, tier), shared by every model id that
/// maps to that family (`gpt-4o` and `gpt-4o-2024-08-06` wait on the same limiter).
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
    /// By family configuration, so aliases share one limiter.
    by_family: DashMap<FamilyKey, FamilyEntry>,
    /// [`Registry::learn_limits`], over `RATE_LIMITED_LEARN_LIMITS`.
    learn_limits: OnceLock<bool>,
    /// Prices and budgets set in code, over the env.
    overrides: Mutex<Overrides>,
    /// The process-wide budget, created with the first family.
    process_budget: OnceLock<Arc<Mutex<Ledger>>>,
}

#[derive(Clone)]
struct FamilyEntry {
    limiter: Limiter,
    feedback: Arc<FamilyFeedback>,
    state: Arc<FamilyState>,
}

#[derive(Default)]
struct Overrides {
    budget: Option<SpendLimit>,
    family_budgets: HashMap<String, SpendLimit>,
    prices: HashMap<String, Price>,
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
    /// [`MAX_CORRECTION`](crate::feedback::MAX_CORRECTION), the excess halving every
    /// [`CORRECTION_HALF_LIFE`](crate::feedback::CORRECTION_HALF_LIFE)). With the Redis backend
    /// it includes what the family's other processes have shared.
    pub fn charge_correction(&self) -> f64 {
        self.feedback.correction_factor()
    }
}

static GLOBAL: Lazy<Registry> = Lazy::new(|| Registry::with_lookup(config::process_env));

thread_local! {
    static SCOPED: RefCell<Vec<Registry>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static BOUND: Registry;
}

/// Thread scopes alive anywhere in the process: when one exists and a call on another thread
/// falls back to the global registry, that is most likely a test whose scope did not reach a
/// spawned task or a worker thread, and it is said out loud.
static LIVE_THREAD_SCOPES: AtomicUsize = AtomicUsize::new(0);
static WARNED_UNSCOPED: AtomicBool = AtomicBool::new(false);

impl Registry {
    /// A registry that reads limits and settings from the process environment.
    pub fn from_process_env() -> Self {
        Registry::with_lookup(config::process_env)
    }

    /// A registry that reads `RATE_LIMITED_*` variables from `vars` only, never from the
    /// process environment (so tests can configure limits without touching global state).
    ///
    /// ```
    /// use ratelimited_runtime::Registry;
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
                learn_limits: OnceLock::new(),
                overrides: Mutex::new(Overrides::default()),
                process_budget: OnceLock::new(),
            }),
        }
    }

    /// Adopts the limits servers report in their rate-limit headers when they differ from the
    /// configured tier, higher ones included (lower ones are always adopted), whatever
    /// `RATE_LIMITED_LEARN_LIMITS` says. Call it before the first model is looked up: families
    /// created earlier keep the setting they were created with.
    ///
    /// ```
    /// use ratelimited_runtime::Registry;
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
    /// use ratelimited_runtime::{config::SpendLimit, Registry};
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
        self.inner
            .overrides
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What every family used so far has done: waits, retries, 429s, breaker, tokens, cost and
    /// budgets. Cheap: one short lock per family.
    pub fn stats(&self) -> Stats {
        let mut families: Vec<_> = self
            .inner
            .by_family
            .iter()
            .map(|entry| entry.value().state.snapshot())
            .collect();
        families.sort_by(|a, b| {
            (&a.provider, &a.family, &a.tier).cmp(&(&b.provider, &b.family, &b.tier))
        });
        let budget_left = self
            .inner
            .process_budget
            .get()
            .map(|ledger| ledger.lock().unwrap_or_else(|p| p.into_inner()).left())
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

    /// The policy of a new family: its price and budget (code over env over table) and the
    /// breaker settings. A dollar budget on a family with no price is an error, not ignored.
    fn family_policy(
        &self,
        family: &LimitFamily,
        settings: &Settings,
    ) -> Result<FamilyPolicy, Error> {
        let lookup = &*self.inner.lookup;
        let (price_override, budget_override) = {
            let overrides = self.overrides();
            (
                overrides.prices.get(&family.id).copied(),
                overrides.family_budgets.get(&family.id).copied(),
            )
        };
        let price = match price_override {
            Some(price) => Some(price),
            None => config::read_price(lookup, family)?
                .or_else(|| built_in_price(family).map(|entry| entry.price)),
        };
        let budget = match budget_override {
            Some(budget) => budget,
            None => config::read_spend_limit(
                lookup,
                &config::family_budget_tokens_var(family),
                &config::family_budget_usd_var(family),
            )?,
        };
        let process = self.process_spend_limit()?;
        if price.is_none() && (budget.usd.is_some() || process.usd.is_some()) {
            return Err(Error::config(
                config::price_var(family),
                "",
                format!(
                    "a price for {family} (e.g. input=2.5,cached=1.25,output=10, USD per million \
                     tokens): a dollar budget is set and {family} has no built-in price"
                ),
            ));
        }
        Ok(FamilyPolicy {
            price,
            budget,
            breaker_failures: settings.breaker_failures,
            breaker_cooldown: settings.breaker_cooldown,
        })
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

    /// The process-wide registry (reads the process environment once per family).
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// The registry `#[rate_limited]` calls use here: the one the current task is
    /// [bound](Registry::bind) to, else the innermost [`scope`](Registry::scope)d one of this
    /// thread, else the global one.
    ///
    /// Falling back to the global registry while a scoped one exists on another thread logs a
    /// warning (once per process, through `tracing`): a scope that silently does not apply
    /// would make a test measure the wrong limits.
    pub fn current() -> Registry {
        if let Ok(bound) = BOUND.try_with(Registry::clone) {
            return bound;
        }
        if let Some(scoped) = SCOPED.with(|scoped| scoped.borrow().last().cloned()) {
            return scoped;
        }
        if LIVE_THREAD_SCOPES.load(Ordering::Relaxed) > 0
            && !WARNED_UNSCOPED.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a #[rate_limited] call uses the global registry while a scoped registry exists \
                 on another thread; a scope set with `Registry::scope` or `fresh_registry*` \
                 covers only its own thread: bind spawned tasks and multi-thread tests with \
                 `Registry::bind`, `Registry::spawn` or `testing::spawn_scoped`"
            );
        }
        GLOBAL.clone()
    }

    /// Makes this registry the [`current`](Registry::current) one on this thread until the
    /// guard is dropped.
    ///
    /// Meant for tests: `#[tokio::test]` runs each test on its own thread with a
    /// current-thread runtime, so every task the test spawns sees the scoped registry, and tests
    /// running in parallel never share a limiter. A multi-thread runtime's workers are other
    /// threads: there, bind the futures instead ([`Registry::bind`], [`Registry::spawn`]).
    ///
    /// ```
    /// use ratelimited_runtime::Registry;
    /// let _scope = Registry::with_env([("RATE_LIMITED_MY_MODEL_TPM", "1000")]).scope();
    /// let limiter = Registry::current().limiter("openai/my-model").unwrap();
    /// assert_eq!(limiter.limiter.quota().tpm, Some(1000));
    /// ```
    pub fn scope(&self) -> ScopeGuard {
        SCOPED.with(|scoped| scoped.borrow_mut().push(self.clone()));
        LIVE_THREAD_SCOPES.fetch_add(1, Ordering::Relaxed);
        ScopeGuard {
            registry: self.clone(),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Runs `future` with this registry [`current`](Registry::current), on whatever thread it
    /// is polled: the way to scope a task on a multi-thread runtime. It takes precedence over
    /// thread scopes.
    ///
    /// ```
    /// use ratelimited_runtime::Registry;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let registry = Registry::with_env([("RATE_LIMITED_MY_MODEL_TPM", "1000")]);
    /// let tpm = registry
    ///     .spawn(async { Registry::current().limiter("openai/my-model").unwrap().limiter.quota().tpm })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(tpm, Some(1000));
    /// # }
    /// ```
    pub fn bind<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        BOUND.scope(self.clone(), future)
    }

    /// Spawns `future` on the current tokio runtime, [bound](Registry::bind) to this registry.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(self.bind(future))
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
        let family_key = FamilyKey {
            family: profile.family.clone(),
            tier: profile.tier.clone(),
        };
        let backend = crate::store::Backend::from_settings(&settings, &*self.inner.lookup)?;
        let entry = self
            .inner
            .by_family
            .entry(family_key)
            .or_try_insert_with(|| {
                // Build the tokenizer now, off the request path, for the calls to come.
                profile.encoding.warm_in_background();
                let limiter = backend.limiter(&profile)?;
                let feedback =
                    FamilyFeedback::new(profile.family.clone(), &limiter, settings.learn_limits);
                let policy = self.family_policy(&profile.family, &settings)?;
                let process_budget = self.process_budget()?;
                let unlimited = process_budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_unlimited();
                let process_budget = (!unlimited).then_some(process_budget);
                let state = FamilyState::new(
                    profile.family.clone(),
                    profile.tier.clone(),
                    policy,
                    process_budget,
                );
                Ok::<_, Error>(FamilyEntry {
                    limiter,
                    feedback: Arc::new(feedback),
                    state: Arc::new(state),
                })
            })?
            .clone();
        let found = ModelLimiter {
            limiter: entry.limiter,
            profile: Arc::new(profile),
            feedback: entry.feedback,
            state: entry.state,
        };
        self.inner.by_call.insert(key, found.clone());
        Ok(found)
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

/// Keeps a registry [`current`](Registry::current) on this thread; see [`Registry::scope`].
#[must_use = "the registry is current only while the guard lives"]
pub struct ScopeGuard {
    registry: Registry,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ScopeGuard {
    /// The scoped registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPED.with(|scoped| {
            let mut scoped = scoped.borrow_mut();
            if let Some(i) = scoped
                .iter()
                .rposition(|r| Arc::ptr_eq(&r.inner, &self.registry.inner))
            {
                scoped.remove(i);
            }
        });
        LIVE_THREAD_SCOPES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeGuard").finish_non_exhaustive()
    }
}

/// Gives the current thread a fresh registry that reads the process environment, until the
/// guard is dropped: limiters created by earlier tests are not seen, and none created now leak
/// into later ones. See [`Registry::scope`]; tasks spawned onto other threads need
/// [`spawn_scoped`] (or [`Registry::bind`]) to see it.
///
/// ```
/// // first line of a test: this test's #[rate_limited] calls see only their own limiters
/// let _registry = ratelimited_runtime::testing::fresh_registry();
/// ```
pub fn fresh_registry() -> ScopeGuard {
    Registry::from_process_env().scope()
}

/// Like [`fresh_registry`], reading `RATE_LIMITED_*` variables from `vars` only (never from
/// the process environment, which tests running in parallel share).
pub fn fresh_registry_with_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> ScopeGuard
where
    K: Into<String>,
    V: Into<String>,
{
    Registry::with_env(vars).scope()
}

/// Spawns `future` bound to the [current](Registry::current) registry, so a task spawned by a
/// test that scoped a registry uses that registry on any worker thread.
///
/// # Panics
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn spawn_scoped<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Registry::current().spawn(future)
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
            Err(Error::Config { variable, .. }) if variable == "provider"
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
