//! What a family keeps per tenant beside the limiter's fair share and caps: each tenant's
//! budget, and the tenants that used the most and waited the longest, for the stats.
//!
//! **Budgets.** A family may give every tenant a budget of its own
//! (`RATE_LIMITED_<FAMILY>_TENANT_BUDGET_TOKENS` / `_TENANT_BUDGET_USD`, or
//! [`Registry::tenant_spend_limit`](crate::Registry::tenant_spend_limit) for one tenant), counted
//! as a family's budget is: a call reserves its prompt estimate plus `n × max_tokens` (in
//! dollars at the family's price) and settles to the usage it reports, over the run or per
//! day (`RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD=day`: 24 hours from the tenant's first call,
//! then the next 24; calls in flight across the turn stay held). A budget
//! spans the run, so its record outlives the tenant's turns: one ledger per tenant that has a
//! budget and has called (120 bytes in the map, plus the id and the budget's name as text);
//! tenants without a budget keep nothing here. With Redis the fleet shares each tenant's
//! budget as well (`Tenants::shared_limit` and `store/budget.rs`): a call is
//! held there after this ledger agreed.
//!
//! **The top tenants.** The stats list the [`TOP_TENANTS`] tenants that used the most tokens
//! and those that waited the longest. They are counted in a table of at most
//! [`TENANTS_TRACKED`] tenants kept by the space-saving rule (Metwally et al.): a tenant new to
//! a full table takes the place of the one with the fewest tokens and starts from its counts,
//! so every tenant that used more than 1/[`TENANTS_TRACKED`] of the family's tokens is in the
//! table, and no count is ever below the truth (`overcount` says by how much it may be above).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::family::spend::{Hold, Ledger};
use crate::units::error::Error;
use crate::units::money::{BudgetPeriod, SpendLimit};
use crate::units::tenant::Tenant;

/// A per-day budget's period.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How many tenants the stats list, by tokens and by wait.
pub const TOP_TENANTS: usize = 10;

/// How many tenants a family counts for its top lists at the most.
pub const TENANTS_TRACKED: usize = 256;

/// One tenant's use of a family, as the stats list it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TenantStats {
    /// The tenant's id.
    pub tenant: String,
    /// Attempts admitted.
    pub admitted: u64,
    /// Tokens its answers were settled to (reported usage, else the reservation).
    pub tokens: u64,
    /// Time its admitted attempts waited, added up.
    pub total_wait: Duration,
    /// How many of `tokens` may belong to tenants this entry replaced in the table (0 while
    /// the table has never been full): the true count is between `tokens - overcount` and
    /// `tokens`.
    pub overcount: u64,
}

/// Per-tenant budgets and the top-tenant table of one family.
#[derive(Debug)]
pub(crate) struct Tenants {
    /// Every tenant's budget unless set for it; unlimited: no ledger is kept.
    default_budget: SpendLimit,
    /// Over the run, or per day.
    period: BudgetPeriod,
    /// Budgets set in code for single tenants.
    budgets: HashMap<Tenant, SpendLimit>,
    /// Each tenant's ledger, and when its current day started (per-day budgets).
    ledgers: HashMap<Tenant, (Ledger, Instant)>,
    /// The family's name in messages (`openai/gpt-4o`).
    family: String,
    table: HashMap<Tenant, TenantStats>,
}

impl Tenants {
    pub(crate) fn new(
        family: String,
        default_budget: SpendLimit,
        period: BudgetPeriod,
        budgets: HashMap<Tenant, SpendLimit>,
    ) -> Self {
        Tenants {
            default_budget,
            period,
            budgets,
            ledgers: HashMap::new(),
            family,
            table: HashMap::new(),
        }
    }

    fn budget_of(&self, tenant: &Tenant) -> SpendLimit {
        self.budgets
            .get(tenant)
            .copied()
            .unwrap_or(self.default_budget)
    }

    /// `tenant`'s budget as the fleet keeps it in Redis, and how messages name it; `None`
    /// when the tenant has no budget.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_limit(
        &self,
        tenant: &Tenant,
    ) -> Option<(crate::store::SharedLimit, String)> {
        let limit = self.budget_of(tenant);
        if limit.tokens.is_none() && limit.usd.is_none() {
            return None;
        }
        let per_day = self.period == BudgetPeriod::Day;
        let shared = crate::store::SharedLimit {
            tokens: limit.tokens,
            nanodollars: limit
                .usd
                .map(|usd| crate::units::money::Nanodollars::from_usd(usd).nanos()),
            per_day,
        };
        Some((shared, owner(&self.family, tenant, self.period)))
    }

    /// Checks `hold` against `tenant`'s budget and holds it there.
    ///
    /// # Errors
    /// [`Error::BudgetExhausted`] naming the tenant.
    pub(crate) fn hold(&mut self, tenant: &Tenant, hold: Hold, now: Instant) -> Result<(), Error> {
        let limit = self.budget_of(tenant);
        if limit.tokens.is_none() && limit.usd.is_none() {
            return Ok(());
        }
        let (family, period) = (&self.family, self.period);
        let (ledger, day) = self
            .ledgers
            .entry(tenant.clone())
            .or_insert_with(|| (Ledger::new(owner(family, tenant, period), limit), now));
        if period == BudgetPeriod::Day && now.saturating_duration_since(*day) >= DAY {
            // A new day: what was spent is forgotten, calls in flight stay held.
            let days = now.saturating_duration_since(*day).as_secs() / DAY.as_secs();
            *day += DAY * u32::try_from(days).unwrap_or(u32::MAX);
            ledger.forget_spent();
        }
        ledger.check(hold)?;
        ledger.hold(hold);
        Ok(())
    }

    /// Releases `held` on `tenant`'s budget and records `spent`.
    pub(crate) fn settle(&mut self, tenant: &Tenant, held: Hold, spent: Hold) {
        if let Some((ledger, _)) = self.ledgers.get_mut(tenant) {
            ledger.settle(held, spent);
        }
    }

    /// An attempt of `tenant` was admitted after `waited`.
    pub(crate) fn admitted(&mut self, tenant: &Tenant, waited: Duration) {
        let entry = self.entry(tenant);
        entry.admitted += 1;
        entry.total_wait += waited;
    }

    /// An answer of `tenant` settled to `tokens`.
    pub(crate) fn used(&mut self, tenant: &Tenant, tokens: u64) {
        let entry = self.entry(tenant);
        entry.tokens = entry.tokens.saturating_add(tokens);
    }

    /// `tenant`'s entry in the table, made if need be by the space-saving rule.
    fn entry(&mut self, tenant: &Tenant) -> &mut TenantStats {
        if !self.table.contains_key(tenant) && self.table.len() >= TENANTS_TRACKED {
            let least = self
                .table
                .iter()
                .min_by_key(|(_, stats)| stats.tokens)
                .map(|(tenant, _)| tenant.clone());
            if let Some(least) = least {
                let replaced = self.table.remove(&least).unwrap_or_default();
                self.table.insert(
                    tenant.clone(),
                    TenantStats {
                        tenant: tenant.as_str().to_owned(),
                        admitted: 0,
                        tokens: replaced.tokens,
                        total_wait: Duration::ZERO,
                        overcount: replaced.tokens,
                    },
                );
            }
        }
        self.table
            .entry(tenant.clone())
            .or_insert_with(|| TenantStats {
                tenant: tenant.as_str().to_owned(),
                ..TenantStats::default()
            })
    }

    /// The [`TOP_TENANTS`] tenants by tokens, then by total wait, most first (ties by id).
    pub(crate) fn top(&self) -> (Vec<TenantStats>, Vec<TenantStats>) {
        let mut by_tokens: Vec<TenantStats> = self.table.values().cloned().collect();
        let mut by_wait = by_tokens.clone();
        by_tokens.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(a.tenant.cmp(&b.tenant)));
        by_wait.sort_by(|a, b| {
            b.total_wait
                .cmp(&a.total_wait)
                .then(a.tenant.cmp(&b.tenant))
        });
        by_tokens.truncate(TOP_TENANTS);
        by_wait.truncate(TOP_TENANTS);
        (by_tokens, by_wait)
    }
}

/// How messages name `tenant`'s budget of `family`: `the openai/gpt-4o tenant `acme``.
fn owner(family: &str, tenant: &Tenant, period: BudgetPeriod) -> String {
    match period {
        BudgetPeriod::Total => format!("the {family} tenant `{}`", tenant.as_str()),
        BudgetPeriod::Day => format!("the {family} tenant `{}` daily", tenant.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::money::{Amount, Nanodollars};

    fn tokens(n: u64) -> Hold {
        Hold {
            tokens: n,
            usd: Nanodollars::ZERO,
        }
    }

    #[test]
    fn a_tenant_budget_refuses_exactly_past_its_edge_and_names_the_tenant() {
        let mut tenants = Tenants::new(
            "openai/gpt-4o".into(),
            SpendLimit::tokens(1_000),
            BudgetPeriod::Total,
            HashMap::from([(Tenant::from("big"), SpendLimit::tokens(5_000))]),
        );
        let acme = Tenant::from("acme");
        let now = Instant::now();
        tenants.hold(&acme, tokens(600), now).unwrap();
        tenants.settle(&acme, tokens(600), tokens(500));
        tenants.hold(&acme, tokens(500), now).unwrap();
        assert_eq!(
            tenants.hold(&acme, tokens(1), now),
            Err(Error::BudgetExhausted {
                budget: "the openai/gpt-4o tenant `acme` token budget".into(),
                remaining: Amount::Tokens(0),
                requested: Amount::Tokens(1),
            })
        );
        // Another tenant has a budget of its own, and one set in code its own size.
        tenants
            .hold(&Tenant::from("beta"), tokens(1_000), now)
            .unwrap();
        tenants
            .hold(&Tenant::from("big"), tokens(5_000), now)
            .unwrap();
    }

    #[test]
    fn a_daily_budget_forgets_what_was_spent_each_day_but_not_what_is_held() {
        let mut tenants = Tenants::new(
            "openai/gpt-4o".into(),
            SpendLimit::tokens(100),
            BudgetPeriod::Day,
            HashMap::new(),
        );
        let acme = Tenant::from("acme");
        let start = Instant::now();
        tenants.hold(&acme, tokens(60), start).unwrap();
        tenants.settle(&acme, tokens(60), tokens(60));
        tenants.hold(&acme, tokens(30), start).unwrap(); // in flight across midnight
        let refused = tenants.hold(&acme, tokens(20), start + DAY - Duration::from_nanos(1));
        assert_eq!(
            refused,
            Err(Error::BudgetExhausted {
                budget: "the openai/gpt-4o tenant `acme` daily token budget".into(),
                remaining: Amount::Tokens(10),
                requested: Amount::Tokens(20),
            })
        );
        // The next day: the 60 spent are forgotten, the 30 held are not.
        tenants.hold(&acme, tokens(70), start + DAY).unwrap();
        assert!(tenants.hold(&acme, tokens(1), start + DAY).is_err());
        // Two days on, the day counts from the first call's, in whole days.
        tenants.settle(&acme, tokens(100), tokens(100));
        tenants
            .hold(&acme, tokens(100), start + DAY * 3 + DAY / 2)
            .unwrap();
    }

    #[test]
    fn without_a_budget_nothing_is_kept_per_tenant() {
        let mut tenants = Tenants::new(
            "openai/gpt-4o".into(),
            SpendLimit::default(),
            BudgetPeriod::Total,
            HashMap::new(),
        );
        for i in 0..10_000_u64 {
            tenants
                .hold(&Tenant::from(i), tokens(1_000_000), Instant::now())
                .unwrap();
        }
        assert!(tenants.ledgers.is_empty());
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_heavy_tenants() {
        let mut tenants = Tenants::new(
            "openai/gpt-4o".into(),
            SpendLimit::default(),
            BudgetPeriod::Total,
            HashMap::new(),
        );
        // Two heavy tenants among 100,000 light ones that each call once.
        for i in 0..100_000_u64 {
            tenants.used(&Tenant::from(i), 1);
            if i % 100 == 0 {
                tenants.used(&Tenant::from("heavy"), 50);
                tenants.used(&Tenant::from("second"), 20);
            }
        }
        assert!(tenants.table.len() <= TENANTS_TRACKED);
        let (by_tokens, _) = tenants.top();
        assert_eq!(by_tokens[0].tenant, "heavy");
        assert_eq!(by_tokens[1].tenant, "second");
        // Never below the truth, and over it by at most what it took over.
        assert!(by_tokens[0].tokens >= 50_000);
        assert!(by_tokens[0].tokens - by_tokens[0].overcount <= 50_000);
    }

    #[test]
    fn the_top_lists_order_by_tokens_and_by_wait() {
        let mut tenants = Tenants::new(
            "openai/gpt-4o".into(),
            SpendLimit::default(),
            BudgetPeriod::Total,
            HashMap::new(),
        );
        tenants.admitted(&Tenant::from("a"), Duration::from_secs(9));
        tenants.used(&Tenant::from("a"), 10);
        tenants.admitted(&Tenant::from("b"), Duration::from_secs(1));
        tenants.used(&Tenant::from("b"), 500);
        let (by_tokens, by_wait) = tenants.top();
        assert_eq!(by_tokens[0].tenant, "b");
        assert_eq!(by_wait[0].tenant, "a");
        assert_eq!(by_wait[0].total_wait, Duration::from_secs(9));
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// What one tenant's budget keeps, beside the id's and the owner name's heap text: the
    /// README's figure.
    #[test]
    fn a_tenant_ledger_entry_is_small() {
        let entry = std::mem::size_of::<(Tenant, (Ledger, Instant))>();
        println!("a tenant's ledger entry: {entry} bytes inline");
        assert!(entry <= 128, "{entry} bytes");
    }
}
