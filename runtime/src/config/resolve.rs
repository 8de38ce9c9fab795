//! Resolving a model to its profile: provider, limit family, tier, quota (built-in table, then
//! env overrides, with the configured headroom) and the provider's estimation rules.

use super::limits::parse_limit;
use super::{
    get, limit_var, provider_tier_var, tenant_limit_var, Settings, DEFAULT_TIER, TIER_VAR,
};
use crate::model::limit_family::LimitFamily;
use crate::model::provider::Provider;
use crate::model::tiers::{self, TierSource};
use crate::model::tokens::Encoding;
use crate::units::cost::{Cost, Dimension, Usage};
use crate::units::error::Error;
use crate::units::quota::{Charged, Quota, Window};

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

/// Everything the library knows about one model: the limits in force (family, tier, quota and
/// where they came from) and the provider's rules for estimating and settling its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelProfile {
    /// The limit family the model draws on.
    pub family: LimitFamily,
    /// The tier in force, normalized (lower case).
    pub tier: String,
    /// The quota: built-in entry, then env overrides, with the configured headroom.
    pub quota: Quota,
    /// The cap of every tenant of the family without one set in code, from
    /// `RATE_LIMITED_<FAMILY>_TENANT_<DIM>` (headroom 1: a cap is the service's own limit,
    /// not the provider's); `None` when no such variable is set.
    pub tenant_cap: Option<Quota>,
    /// The source of the built-in entry, if one was used.
    pub source: Option<&'static TierSource>,
    /// The dimensions set by `RATE_LIMITED_<FAMILY>_<DIM>` variables (for Azure, an RPM derived
    /// from an overridden TPM is not listed).
    pub overrides: Vec<Dimension>,
    /// The tokenizer that estimates the model's prompts.
    pub encoding: Encoding,
    /// Output tokens reserved per choice when nothing says `max_tokens`.
    pub default_max_tokens: u64,
    /// Whether the provider gives reserved but unused output back
    /// ([`Provider::refunds_unused_output`]).
    pub refunds_unused_output: bool,
    /// Whether prompt tokens read from the cache count toward the input limits
    /// ([`Provider::counts_cache_reads`]).
    pub counts_cache_reads: bool,
    /// Whether `RATE_LIMITED_<FAMILY>_WINDOW` set how the server counts (then the answers do
    /// not change it; see [`Window`]).
    pub window_configured: bool,
}

impl ModelProfile {
    /// What the provider charges against its limits for a request of this family that
    /// reserved `reserved` and reported `usage`.
    ///
    /// Input is settled to the real count, less the cache reads where the provider leaves them
    /// out ([`Provider::counts_cache_reads`]: Anthropic's ITPM on current models), but never
    /// below `charged_prompt`, the character estimate a provider that charges one took on
    /// arrival; output too where the provider refunds unused output
    /// ([`Provider::refunds_unused_output`]), otherwise the reserved output stays charged.
    /// Whole responses and streams settle the same way. The result carries no cache counts: it
    /// is what the buckets keep, not what the response said.
    ///
    /// ```
    /// # use ratelimited_runtime::config::{resolve, Settings};
    /// # use ratelimited_runtime::units::cost::{Cost, Usage};
    /// # let lookup = |_: &str| None;
    /// # let settings = Settings::from_lookup(&lookup).unwrap();
    /// let sonnet = resolve("claude-sonnet-4-5", None, None, &settings, &lookup).unwrap();
    /// let usage = Usage::new(10_000, 200).with_cache_reads(9_000);
    /// let reserved = Cost::request(10_000, 1_024);
    /// assert_eq!(sonnet.charged_usage(None, reserved, usage), Usage::new(1_000, 200));
    /// let gpt = resolve("gpt-4o-mini", None, None, &settings, &lookup).unwrap();
    /// assert_eq!(gpt.charged_usage(None, reserved, usage), Usage::new(10_000, 1_024));
    /// ```
    pub fn charged_usage(
        &self,
        charged_prompt: Option<u64>,
        reserved: Cost,
        usage: Usage,
    ) -> Usage {
        let counted = if self.counts_cache_reads {
            usage.input_tokens
        } else {
            usage
                .input_tokens
                .saturating_sub(usage.cache_read_input_tokens)
        };
        let input = charged_prompt.map_or(counted, |charged| counted.max(charged));
        if self.refunds_unused_output {
            Usage::new(input, usage.output_tokens)
        } else {
            Usage::new(input, usage.output_tokens.max(reserved.output_tokens))
        }
    }
}

/// Resolves the profile of `model`.
///
/// - provider: `provider` if given (validated), else the model id's provider prefix
///   (`openai/gpt-4o-mini`, `azure/my-deployment`: the LiteLLM and OpenRouter convention), else
///   inferred from the model name, else an error; a prefix that contradicts `provider` is an
///   error too;
/// - tier: see [`resolve_tier`];
/// - quota: the built-in table entry of the model's family at that tier, then every
///   `RATE_LIMITED_<FAMILY>_<DIM>` replaces one dimension; for Azure, when TPM is set and RPM is
///   not, RPM is derived with [`azure_rpm_from_tpm`](crate::config::azure_rpm_from_tpm);
///   headroom from `settings`.
///
/// # Errors
/// - [`Error::UnknownProvider`] when no provider is given and the model name does not say;
/// - [`Error::Config`] for an unknown or contradicted provider, a malformed tier or limit;
/// - [`Error::UnknownModel`] if the family has no built-in entry at that tier and no variable
///   defines it; its hint names the variables to set.
pub fn resolve(
    model: &str,
    provider: Option<&str>,
    tier: Option<&str>,
    settings: &Settings,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ModelProfile, Error> {
    resolve_as(
        model,
        provider,
        tier.map(|t| ("tier", t)),
        None,
        settings,
        lookup,
    )
}

/// [`resolve`], with the limits of `limits_of` instead of the model's own family when given (a
/// pool's deployment: its name is the family the limiter, variables, breaker and budgets go
/// by, while the tier table, tokenizer and provider rules stay the model's). An explicit tier
/// comes with the variable it was read from, for its error.
pub(crate) fn resolve_as(
    model: &str,
    provider: Option<&str>,
    tier: Option<(&str, &str)>,
    limits_of: Option<&str>,
    settings: &Settings,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ModelProfile, Error> {
    if model.trim().is_empty() {
        return Err(Error::config("model", model, "a non-empty model id"));
    }
    let (prefixed, name) = Provider::split_prefix(model);
    let provider = match (provider, prefixed) {
        (Some(given), prefixed) => {
            let given_provider = Provider::parse(given)?;
            if let Some(prefixed) = prefixed.filter(|p| *p != given_provider) {
                return Err(Error::config(
                    "provider",
                    given,
                    format!(
                        "`{prefixed}`, the provider the model id `{model}` names, or a model id \
                         without a provider prefix"
                    ),
                ));
            }
            given_provider
        }
        (None, Some(prefixed)) => prefixed,
        (None, None) => Provider::infer(name).ok_or_else(|| Error::UnknownProvider {
            model: model.to_owned(),
            recognized: Provider::RECOGNIZED_NAMES.to_owned(),
        })?,
    };
    let tier = match tier {
        Some((variable, tier)) => tiers::validate_tier(provider, variable, tier)?,
        None => resolve_tier(provider, None, lookup)?,
    };
    let model_family = LimitFamily::of(provider, name);
    let family = match limits_of {
        Some(deployment) => LimitFamily {
            provider,
            id: deployment.trim().to_ascii_lowercase(),
        },
        None => model_family.clone(),
    };
    let entry = tiers::builtin_entry(provider, &tier, &model_family.id);
    let mut quota = entry.map_or_else(Quota::default, |e| e.quota());

    let mut overrides = Vec::new();
    for dimension in Dimension::ALL {
        let variable = limit_var(&family, dimension);
        if let Some(value) = get(lookup, &variable) {
            quota.set_limit(dimension, parse_limit(&variable, &value, dimension)?);
            overrides.push(dimension);
        }
    }

    let mut tenant_cap: Option<Quota> = None;
    for dimension in Dimension::ALL {
        let variable = tenant_limit_var(&family, dimension);
        if let Some(value) = get(lookup, &variable) {
            let limit = parse_limit(&variable, &value, dimension)?;
            tenant_cap
                .get_or_insert_with(Quota::default)
                .set_limit(dimension, limit);
        }
    }

    let window_var = format!("RATE_LIMITED_{}_WINDOW", family.env_prefix());
    let window_value = get(lookup, &window_var);
    let window_configured = window_value.is_some();
    if let Some(value) = window_value {
        quota.window = Window::parse(&value)
            .ok_or_else(|| Error::config(&window_var, value.clone(), Window::ACCEPTED))?;
    }

    let charged_var = format!("RATE_LIMITED_{}_CHARGED", family.env_prefix());
    if let Some(value) = get(lookup, &charged_var) {
        quota.charged = Charged::parse(&value)
            .ok_or_else(|| Error::config(&charged_var, value.clone(), Charged::ACCEPTED))?;
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

    if !overrides.contains(&Dimension::RequestsPerMinute) {
        if let (None, Some(tpm)) = (quota.rpm, quota.tpm) {
            quota.rpm = provider.derived_rpm(&model_family.id, tpm);
        }
    }
    if !overrides.contains(&Dimension::RequestsPerSecond) && quota.rps.is_none() {
        quota.rps = quota.rpm.and_then(|rpm| provider.short_window_rps(rpm));
    }

    quota.headroom = settings.headroom;
    tracing::debug!(
        family = %family,
        tier = %tier,
        source = entry.map(|e| e.source.source_date),
        ?overrides,
        ?quota,
        "resolved rate limits"
    );
    Ok(ModelProfile {
        encoding: crate::model::tokens::encoding_for_model(name),
        default_max_tokens: provider.default_max_tokens(name),
        refunds_unused_output: provider.refunds_unused_output(),
        counts_cache_reads: provider.counts_cache_reads(&model_family.id),
        window_configured,
        family,
        tier,
        quota,
        tenant_cap,
        source: entry.map(|e| e.source),
        overrides,
    })
}

/// Which variables would define a family the tables do not know, phrased for
/// [`Error::UnknownModel`]: the dimensions this provider limits on.
fn provider_hint(family: &LimitFamily) -> String {
    let var = |dimension: Dimension| limit_var(family, dimension);
    match family.provider {
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
            "{}, {} (Gemini's TPM counts input tokens only) and {} to the limits AI Studio \
             shows for this model; there is no built-in Gemini table",
            var(Dimension::RequestsPerMinute),
            var(Dimension::InputTokensPerMinute),
            var(Dimension::RequestsPerDay)
        ),
        Provider::Azure => format!(
            "{} to the deployment's TPM quota (RPM is derived from it) or {} as well; there \
             is no built-in Azure table",
            var(Dimension::TokensPerMinute),
            var(Dimension::RequestsPerMinute)
        ),
    }
}

/// The provider's hint for an unknown family, plus the tiers that do have built-in limits.
fn unknown_model_hint(family: &LimitFamily) -> String {
    let mut hint = provider_hint(family);
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
mod tests;
