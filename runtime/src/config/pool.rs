//! Deployment pools: one logical model served by several deployments, each with limits of its
//! own (Azure regions, a provisioned deployment with pay-as-you-go spill-over, two OpenAI
//! projects). What a pool is made of, from the environment or built in code; the routing
//! itself is the `pool` layer's.
//!
//! | variable | meaning |
//! |---|---|
//! | `RATE_LIMITED_POOL_<NAME>` | the pool's deployments, in order: `east,west,ptu` |
//! | `RATE_LIMITED_POOL_<NAME>_SPILL_AFTER_MS` | strict order: use the first deployment until a call would wait longer than this there, then the next (unset: the soonest admission wins) |
//! | `RATE_LIMITED_POOL_<NAME>_QUOTA_COOLDOWN_MS` | how long a deployment that answered `insufficient_quota` or a spend cap is skipped; default 600000 |
//! | `RATE_LIMITED_POOL_<NAME>_BUDGET_TOKENS`, `RATE_LIMITED_POOL_<NAME>_BUDGET_USD` | what the pool's deployments may use together, over the run (as a family's budget); unset = unlimited |
//! | `RATE_LIMITED_<DEPLOYMENT>_MODEL` | the model the deployment serves, with its provider as a prefix where the name does not say it: `azure/gpt-4o`, `gpt-4o-mini`, `anthropic/claude-sonnet-4-5` (required) |
//! | `RATE_LIMITED_<DEPLOYMENT>_TIER` | its tier (else the provider's, as for any model) |
//! | `RATE_LIMITED_<DEPLOYMENT>_<DIM>` | its limits, over the model's tier table: `RATE_LIMITED_EAST_TPM=100000` |
//! | `RATE_LIMITED_<DEPLOYMENT>_ENDPOINT`, `RATE_LIMITED_<DEPLOYMENT>_KEY_VAR` | how your client reaches it: an endpoint, and the *name* of the variable that holds its key; the library only hands them back |
//!
//! `NAME` and `DEPLOYMENT` are upper-cased with every non-alphanumeric as `_`, as family ids
//! are: a deployment's name is the limit family its limiter, breaker, budgets
//! (`RATE_LIMITED_<DEPLOYMENT>_BUDGET_USD`) and stats go by, so an Azure deployment called
//! directly (`azure/east`) and through a pool shares one limiter.

use std::time::Duration;

use super::resolve::{resolve_as, ModelProfile};
use super::spend::read_spend_limit;
use super::{get, Settings};
use crate::model::limit_family::env_prefix;
use crate::units::error::Error;
use crate::units::money::SpendLimit;
use crate::units::quota::Quota;

/// How long a deployment that answered `insufficient_quota` (or a spend cap) is skipped by
/// default: money problems are not fixed in seconds.
pub const DEFAULT_QUOTA_COOLDOWN: Duration = Duration::from_secs(600);

/// How a pool picks the deployment of each attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// The deployment that admits the whole call soonest; ties go to the earlier one in the
    /// pool's order.
    #[default]
    Soonest,
    /// The first deployment in order that admits the call within `spill_after`; when none
    /// does, the soonest. A provisioned (PTU) deployment first, pay-as-you-go after it.
    Ordered {
        /// The longest wait accepted on an earlier deployment before spilling over.
        spill_after: Duration,
    },
}

/// One deployment of a pool: the model it serves, its limits and how to reach it.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::pool::DeploymentConfig;
/// use ratelimited::Quota;
/// let east = DeploymentConfig::new("east", "azure/gpt-4o")
///     .quota(Quota::default().tpm(100_000).rpm(600))
///     .endpoint("https://contoso-east.openai.azure.com")
///     .key_var("AZURE_EAST_KEY");
/// assert_eq!(east.name(), "east");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentConfig {
    name: String,
    model: String,
    tier: Option<String>,
    quota: Option<Quota>,
    endpoint: Option<String>,
    key_var: Option<String>,
}

impl DeploymentConfig {
    /// A deployment called `name` serving `model` (provider-prefixed where the name does not
    /// say it: `azure/gpt-4o`), with the limits of the model's tier table and of the
    /// `RATE_LIMITED_<NAME>_<DIM>` variables.
    pub fn new(name: impl Into<String>, model: impl Into<String>) -> Self {
        DeploymentConfig {
            name: name.into().trim().to_owned(),
            model: model.into(),
            tier: None,
            quota: None,
            endpoint: None,
            key_var: None,
        }
    }

    /// Its tier, over `RATE_LIMITED_<NAME>_TIER` and the provider's.
    #[must_use]
    pub fn tier(mut self, tier: impl Into<String>) -> Self {
        self.tier = Some(tier.into());
        self
    }

    /// Its limits exactly (headroom included), over the variables and the tier table.
    #[must_use]
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Where your client sends its requests; the library only hands it back.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The name of the variable that holds its API key (never the key); handed back only.
    #[must_use]
    pub fn key_var(mut self, key_var: impl Into<String>) -> Self {
        self.key_var = Some(key_var.into());
        self
    }

    /// The deployment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model it serves, as configured.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Where your client sends its requests, if configured.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The variable that holds its key, if configured.
    pub fn key_var_name(&self) -> Option<&str> {
        self.key_var.as_deref()
    }

    /// The deployment's profile: the model's tier table, provider rules and tokenizer, with
    /// the deployment's own limits (its variables, or the quota set in code) under its own
    /// family id.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::UnknownModel`] naming the variable and the deployment.
    pub(crate) fn resolve(
        &self,
        pool: &str,
        settings: &Settings,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ModelProfile, Error> {
        let prefix = env_prefix(&self.name);
        let tier_var = format!("RATE_LIMITED_{prefix}_TIER");
        let tier = match &self.tier {
            Some(tier) => Some(("DeploymentConfig::tier".to_owned(), tier.clone())),
            None => get(lookup, &tier_var).map(|tier| (tier_var, tier)),
        };
        let tier = tier.as_ref().map(|(var, t)| (var.as_str(), t.as_str()));
        let mut profile = resolve_as(&self.model, None, tier, Some(&self.name), settings, lookup)
            .or_else(|error| match (&error, &self.quota) {
                // Limits set in code need no table entry or variable; the deployment's other
                // variables (its tenants' caps, its window) still apply.
                (Error::UnknownModel { .. }, Some(_)) => {
                    let with = |name: &str| {
                        if name == format!("RATE_LIMITED_{prefix}_RPM") {
                            Some("1".to_owned())
                        } else {
                            lookup(name)
                        }
                    };
                    resolve_as(&self.model, None, tier, Some(&self.name), settings, &with)
                }
                _ => Err(error),
            })
            .map_err(|error| in_deployment(error, pool, &self.name))?;
        if let Some(quota) = &self.quota {
            quota
                .validate()
                .map_err(|error| in_deployment(error, pool, &self.name))?;
            profile.quota = quota.clone();
        }
        Ok(profile)
    }
}

/// A pool: a name for one logical model and its deployments, in order.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::pool::{DeploymentConfig, PoolConfig, Routing};
/// use ratelimited::Quota;
/// let pool = PoolConfig::new("gpt-4o")
///     .deployment(DeploymentConfig::new("ptu", "azure/gpt-4o").quota(Quota::default().tpm(300_000)))
///     .deployment(DeploymentConfig::new("paygo", "azure/gpt-4o").quota(Quota::default().tpm(150_000)))
///     .spill_after(Duration::from_millis(500));
/// assert_eq!(pool.routing(), Routing::Ordered { spill_after: Duration::from_millis(500) });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    name: String,
    deployments: Vec<DeploymentConfig>,
    routing: Routing,
    quota_cooldown: Duration,
    budget: Option<SpendLimit>,
}

impl PoolConfig {
    /// An empty pool called `name`: add its deployments in order.
    pub fn new(name: impl Into<String>) -> Self {
        PoolConfig {
            name: name.into().trim().to_owned(),
            deployments: Vec::new(),
            routing: Routing::Soonest,
            quota_cooldown: DEFAULT_QUOTA_COOLDOWN,
            budget: None,
        }
    }

    /// Adds a deployment after the ones already added.
    #[must_use]
    pub fn deployment(mut self, deployment: DeploymentConfig) -> Self {
        self.deployments.push(deployment);
        self
    }

    /// Strict order with spill-over (see [`Routing::Ordered`]).
    #[must_use]
    pub fn spill_after(mut self, spill_after: Duration) -> Self {
        self.routing = Routing::Ordered { spill_after };
        self
    }

    /// How long a deployment that answered `insufficient_quota` or a spend cap is skipped
    /// (default [`DEFAULT_QUOTA_COOLDOWN`]).
    #[must_use]
    pub fn quota_cooldown(mut self, cooldown: Duration) -> Self {
        self.quota_cooldown = cooldown;
        self
    }

    /// What the pool's deployments may use together, over
    /// `RATE_LIMITED_POOL_<NAME>_BUDGET_TOKENS` and `_BUDGET_USD` (the whole limit replaces
    /// theirs, as [`Registry::family_spend_limit`](crate::Registry::family_spend_limit) does a
    /// family's). Every call on a deployment counts, through the pool or directly; a call the
    /// pool's budget cannot take fails with [`Error::BudgetExhausted`] naming the pool, even
    /// when each deployment's own budget has room. A dollar budget needs a price for every
    /// deployment (`RATE_LIMITED_<DEPLOYMENT>_PRICE`).
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::pool::{DeploymentConfig, PoolConfig};
    /// use ratelimited::spend::SpendLimit;
    /// let pool = PoolConfig::new("gpt-4o")
    ///     .deployment(DeploymentConfig::new("east", "azure/gpt-4o"))
    ///     .budget(SpendLimit::tokens(5_000_000));
    /// assert_eq!(pool.spend_limit(), Some(SpendLimit::tokens(5_000_000)));
    /// ```
    #[must_use]
    pub fn budget(mut self, limit: SpendLimit) -> Self {
        self.budget = Some(limit);
        self
    }

    /// The same pool with no budget set in code.
    #[cfg(feature = "planner")]
    pub(crate) fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// The pool's budget set in code or read from the environment, if any.
    pub fn spend_limit(&self) -> Option<SpendLimit> {
        self.budget
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its deployments, in order.
    pub fn deployments(&self) -> &[DeploymentConfig] {
        &self.deployments
    }

    /// How it routes.
    pub fn routing(&self) -> Routing {
        self.routing
    }

    /// How long an out-of-quota deployment is skipped.
    pub fn cooldown(&self) -> Duration {
        self.quota_cooldown
    }

    /// The variable that lists the deployments of the pool `name`: `RATE_LIMITED_POOL_GPT_4O`.
    pub fn var(name: &str) -> String {
        format!("RATE_LIMITED_POOL_{}", env_prefix(name))
    }

    /// The budget of the pool `name` from `RATE_LIMITED_POOL_<NAME>_BUDGET_TOKENS` and
    /// `_BUDGET_USD`; `None` when neither is set.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable, the value and what is accepted.
    pub fn budget_from_lookup(
        name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SpendLimit>, Error> {
        let var = PoolConfig::var(name);
        let limit = read_spend_limit(
            lookup,
            &format!("{var}_BUDGET_TOKENS"),
            &format!("{var}_BUDGET_USD"),
        )?;
        Ok((limit.tokens.is_some() || limit.usd.is_some()).then_some(limit))
    }

    /// The budget set in code, else the one the environment sets for this pool.
    ///
    /// # Errors
    /// As [`PoolConfig::budget_from_lookup`].
    pub(crate) fn resolved_budget(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SpendLimit>, Error> {
        match self.budget {
            Some(limit) => Ok(Some(limit)),
            None => PoolConfig::budget_from_lookup(&self.name, lookup),
        }
    }

    /// The pool `name` as the environment defines it, `None` when `RATE_LIMITED_POOL_<NAME>` is
    /// unset.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable (and the deployment) for a malformed list, a
    /// deployment without `RATE_LIMITED_<DEPLOYMENT>_MODEL`, or a malformed duration.
    pub fn from_lookup(
        name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<PoolConfig>, Error> {
        let var = PoolConfig::var(name);
        let Some(list) = get(lookup, &var) else {
            return Ok(None);
        };
        let mut pool = PoolConfig::new(name);
        for deployment in list.split(',').map(str::trim) {
            let prefix = env_prefix(deployment);
            let model_var = format!("RATE_LIMITED_{prefix}_MODEL");
            let Some(model) = get(lookup, &model_var) else {
                return Err(Error::config(
                    &model_var,
                    "",
                    format!(
                        "the model deployment `{deployment}` of pool `{name}` serves, with its \
                         provider as a prefix where the name does not say it (`azure/gpt-4o`, \
                         `gpt-4o-mini`, `anthropic/claude-sonnet-4-5`); it is unset"
                    ),
                ));
            };
            let mut config = DeploymentConfig::new(deployment, model);
            let endpoint_var = format!("RATE_LIMITED_{prefix}_ENDPOINT");
            config.endpoint = get(lookup, &endpoint_var);
            config.key_var = get(lookup, &format!("RATE_LIMITED_{prefix}_KEY_VAR"));
            pool.deployments.push(config);
        }
        pool.check_names(&var, &list)?;
        if let Some(ms) = read_ms(lookup, &format!("{var}_SPILL_AFTER_MS"))? {
            pool.routing = Routing::Ordered { spill_after: ms };
        }
        if let Some(ms) = read_ms(lookup, &format!("{var}_QUOTA_COOLDOWN_MS"))? {
            pool.quota_cooldown = ms;
        }
        pool.budget = PoolConfig::budget_from_lookup(name, lookup)?;
        Ok(Some(pool))
    }

    /// Checks the pool's shape: a name, at least one deployment, names that are non-empty,
    /// of letters, digits, `-`, `_` and `.`, and distinct as variables spell them.
    /// `variable` and `value` are what the error names (the env list, or the code).
    ///
    /// # Errors
    /// [`Error::Config`] naming `variable`, the value and what is accepted.
    pub(crate) fn check_names(&self, variable: &str, value: &str) -> Result<(), Error> {
        let accepted = |what: String| Error::config(variable, value, what);
        if self.name.is_empty() || !self.name.chars().all(name_char) {
            return Err(accepted(format!(
                "a pool name of letters, digits, `-`, `_` or `.`, not `{}`",
                self.name
            )));
        }
        if self.deployments.is_empty() {
            return Err(accepted(format!(
                "at least one deployment in pool `{}` (`east,west,ptu`)",
                self.name
            )));
        }
        for (i, deployment) in self.deployments.iter().enumerate() {
            let name = deployment.name();
            if name.is_empty() || !name.chars().all(name_char) {
                return Err(accepted(format!(
                    "deployment names of letters, digits, `-`, `_` or `.`, separated by commas \
                     (`east,west,ptu`); deployment {} of pool `{}` is `{name}`",
                    i + 1,
                    self.name
                )));
            }
            let earlier = &self.deployments[..i];
            if let Some(same) = earlier
                .iter()
                .find(|d| env_prefix(d.name()) == env_prefix(name))
            {
                return Err(accepted(format!(
                    "distinct deployment names: `{}` and `{name}` of pool `{}` both read \
                     RATE_LIMITED_{}_*",
                    same.name(),
                    self.name,
                    env_prefix(name)
                )));
            }
        }
        Ok(())
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A duration in whole milliseconds, `None` if unset.
fn read_ms(
    lookup: &dyn Fn(&str) -> Option<String>,
    variable: &str,
) -> Result<Option<Duration>, Error> {
    let Some(value) = get(lookup, variable) else {
        return Ok(None);
    };
    value
        .replace('_', "")
        .parse::<u64>()
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|_| Error::config(variable, value, "a whole number of milliseconds"))
}

/// `error`, saying which deployment of which pool it is about.
fn in_deployment(error: Error, pool: &str, deployment: &str) -> Error {
    let whose = format!("deployment `{deployment}` of pool `{pool}`");
    match error {
        Error::Config {
            variable,
            value,
            expected,
        } => Error::Config {
            variable,
            value,
            expected: format!("{expected} (for {whose})"),
        },
        Error::UnknownModel {
            model,
            provider,
            tier,
            family_env,
            hint,
        } => Error::UnknownModel {
            model,
            provider,
            tier,
            family_env,
            hint: format!("{hint} (for {whose}), or give it a Quota in code"),
        },
        Error::UnknownProvider { model, recognized } => Error::Config {
            variable: format!("RATE_LIMITED_{}_MODEL", env_prefix(deployment)),
            value: model,
            expected: format!(
                "a model id with its provider as a prefix (`azure/..`, `openai/..`, \
                 `anthropic/..`, `gemini/..`) for {whose}; as model names, {recognized}"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_pool_reads_its_deployments_in_order() {
        let lookup = env(&[
            ("RATE_LIMITED_POOL_GPT_4O", "east, west,openai-b"),
            ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
            ("RATE_LIMITED_EAST_ENDPOINT", "https://east.example"),
            ("RATE_LIMITED_EAST_KEY_VAR", "AZURE_EAST_KEY"),
            ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
            ("RATE_LIMITED_OPENAI_B_MODEL", "gpt-4o"),
            ("RATE_LIMITED_POOL_GPT_4O_SPILL_AFTER_MS", "250"),
        ]);
        let pool = PoolConfig::from_lookup("gpt-4o", &lookup).unwrap().unwrap();
        let names: Vec<_> = pool.deployments().iter().map(|d| d.name()).collect();
        assert_eq!(names, ["east", "west", "openai-b"]);
        assert_eq!(
            pool.deployments()[0].endpoint_url(),
            Some("https://east.example")
        );
        assert_eq!(pool.deployments()[0].key_var_name(), Some("AZURE_EAST_KEY"));
        assert_eq!(
            pool.routing(),
            Routing::Ordered {
                spill_after: Duration::from_millis(250)
            }
        );
        assert_eq!(pool.cooldown(), DEFAULT_QUOTA_COOLDOWN);
        assert_eq!(PoolConfig::from_lookup("other", &lookup), Ok(None));
    }

    #[test]
    fn a_bad_pool_names_the_variable_and_the_deployment() {
        let missing = env(&[("RATE_LIMITED_POOL_P", "east")]);
        let err = PoolConfig::from_lookup("p", &missing).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("RATE_LIMITED_EAST_MODEL"), "{text}");
        assert!(text.contains("deployment `east` of pool `p`"), "{text}");

        let gap = env(&[
            ("RATE_LIMITED_POOL_P", "east,,west"),
            ("RATE_LIMITED__MODEL", "gpt-4o"),
            ("RATE_LIMITED_EAST_MODEL", "gpt-4o"),
            ("RATE_LIMITED_WEST_MODEL", "gpt-4o"),
        ]);
        let text = PoolConfig::from_lookup("p", &gap).unwrap_err().to_string();
        assert!(
            text.contains("RATE_LIMITED_POOL_P=\"east,,west\""),
            "{text}"
        );
        assert!(text.contains("deployment 2 of pool `p` is ``"), "{text}");

        let twice = env(&[
            ("RATE_LIMITED_POOL_P", "us-east,us_east"),
            ("RATE_LIMITED_US_EAST_MODEL", "gpt-4o"),
        ]);
        let text = PoolConfig::from_lookup("p", &twice)
            .unwrap_err()
            .to_string();
        assert!(text.contains("RATE_LIMITED_US_EAST_*"), "{text}");

        let ms = env(&[
            ("RATE_LIMITED_POOL_P", "east"),
            ("RATE_LIMITED_EAST_MODEL", "gpt-4o"),
            ("RATE_LIMITED_POOL_P_SPILL_AFTER_MS", "0.5s"),
        ]);
        let text = PoolConfig::from_lookup("p", &ms).unwrap_err().to_string();
        assert!(
            text.contains("RATE_LIMITED_POOL_P_SPILL_AFTER_MS=\"0.5s\""),
            "{text}"
        );
    }

    #[test]
    fn a_pool_budget_reads_its_variables_and_names_them_when_malformed() {
        let lookup = env(&[
            ("RATE_LIMITED_POOL_GPT_4O", "east"),
            ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
            ("RATE_LIMITED_POOL_GPT_4O_BUDGET_TOKENS", "2_000_000"),
            ("RATE_LIMITED_POOL_GPT_4O_BUDGET_USD", "12.50"),
        ]);
        let pool = PoolConfig::from_lookup("gpt-4o", &lookup).unwrap().unwrap();
        assert_eq!(
            pool.spend_limit(),
            Some(SpendLimit {
                tokens: Some(2_000_000),
                usd: Some(12.5)
            })
        );
        let coded = PoolConfig::new("gpt-4o").budget(SpendLimit::tokens(10));
        assert_eq!(
            coded.resolved_budget(&lookup).unwrap(),
            Some(SpendLimit::tokens(10)),
            "code over the environment"
        );
        assert_eq!(
            PoolConfig::new("gpt-4o").resolved_budget(&lookup).unwrap(),
            pool.spend_limit()
        );
        assert_eq!(PoolConfig::budget_from_lookup("other", &lookup), Ok(None));
        for (variable, bad) in [
            ("RATE_LIMITED_POOL_P_BUDGET_TOKENS", "1.5"),
            ("RATE_LIMITED_POOL_P_BUDGET_TOKENS", "0"),
            ("RATE_LIMITED_POOL_P_BUDGET_USD", "$5"),
        ] {
            let lookup = env(&[
                ("RATE_LIMITED_POOL_P", "east"),
                ("RATE_LIMITED_EAST_MODEL", "gpt-4o"),
                (variable, bad),
            ]);
            let text = PoolConfig::from_lookup("p", &lookup)
                .unwrap_err()
                .to_string();
            assert!(text.contains(&format!("{variable}=\"{bad}\"")), "{text}");
        }
    }

    #[test]
    fn a_deployment_has_the_models_table_and_its_own_limits() {
        let lookup = env(&[
            ("RATE_LIMITED_PROJ_B_TPM", "50000"),
            ("RATE_LIMITED_EAST_TPM", "100000"),
        ]);
        let settings = Settings::from_lookup(&lookup).unwrap();
        let b = DeploymentConfig::new("proj-b", "gpt-4o-mini")
            .resolve("p", &settings, &lookup)
            .unwrap();
        assert_eq!(b.family.id, "proj-b");
        assert_eq!(b.quota.rpm, Some(500), "the tier table's RPM");
        assert_eq!(b.quota.tpm, Some(50_000));
        let east = DeploymentConfig::new("east", "azure/gpt-4o")
            .resolve("p", &settings, &lookup)
            .unwrap();
        assert_eq!(east.family.to_string(), "azure/east");
        assert_eq!(east.quota.rpm, Some(600), "Azure's 6 RPM per 1,000 TPM");
        let err = DeploymentConfig::new("west", "azure/gpt-4o")
            .resolve("p", &settings, &lookup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("RATE_LIMITED_WEST_TPM"), "{err}");
        assert!(err.contains("deployment `west` of pool `p`"), "{err}");
        let coded = DeploymentConfig::new("west", "azure/gpt-4o")
            .quota(Quota::default().tpm(20_000))
            .resolve("p", &settings, &lookup)
            .unwrap();
        assert_eq!(coded.quota, Quota::default().tpm(20_000));
    }
}
