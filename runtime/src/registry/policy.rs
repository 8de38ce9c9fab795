//! A registry's policy for new families: prices and budgets set in code over the environment
//! over the built-in tables, and the breaker settings.

use std::collections::HashMap;

use crate::config::{self, Settings};
use crate::family::state::FamilyPolicy;
use crate::model::limit_family::LimitFamily;
use crate::model::prices::{built_in_price, Price};
use crate::units::error::Error;
use crate::units::money::SpendLimit;
use crate::units::tenant::Tenant;

/// Where a registry reads `RATE_LIMITED_*` variables.
pub(super) type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Prices and budgets set in code, over the environment.
#[derive(Default)]
pub(super) struct Overrides {
    pub(super) budget: Option<SpendLimit>,
    pub(super) family_budgets: HashMap<String, SpendLimit>,
    /// Budgets of single tenants, by family id.
    pub(super) tenant_budgets: HashMap<String, HashMap<Tenant, SpendLimit>>,
    pub(super) prices: HashMap<String, Price>,
}

/// The policy of a new family: its price and budget (code over env over table) and the
/// breaker settings. A dollar budget on a family with no price is an error, not ignored.
pub(super) fn family_policy(
    overrides: &Overrides,
    lookup: &Lookup,
    family: &LimitFamily,
    settings: &Settings,
    process: SpendLimit,
) -> Result<FamilyPolicy, Error> {
    let price_override = overrides.prices.get(&family.id).copied();
    let budget_override = overrides.family_budgets.get(&family.id).copied();
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
    let tenant_budget = config::read_spend_limit(
        lookup,
        &config::tenant_budget_tokens_var(family),
        &config::tenant_budget_usd_var(family),
    )?;
    let tenant_budget_period = config::read_budget_period(lookup, family)?;
    let tenant_budgets = overrides
        .tenant_budgets
        .get(&family.id)
        .cloned()
        .unwrap_or_default();
    let tenant_usd =
        tenant_budget.usd.is_some() || tenant_budgets.values().any(|b| b.usd.is_some());
    if price.is_none() && (budget.usd.is_some() || process.usd.is_some() || tenant_usd) {
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
        tenant_budget,
        tenant_budget_period,
        tenant_budgets,
        breaker_failures: settings.breaker_failures,
        breaker_cooldown: settings.breaker_cooldown,
    })
}
