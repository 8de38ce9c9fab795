//! The tenants' budgets of a family shared by the fleet (see `budget.lua`): one hash per tenant
//! under the family's own hash tag (every tier of a family spends from the same budget), holding
//! what its calls spent and hold, in tokens and nano-dollars.
//!
//! A call holds its reservation there before it waits (after this process's own ledger agreed)
//! and settles to its usage when it ends, as the process's ledgers do; a call whose hold Redis
//! refuses fails with the same error as a spent budget. While Redis does not answer, a call is
//! held on this process's ledger alone (nothing to settle in Redis afterwards). A per-day budget
//! lives 24 hours from its first hold, then starts afresh (what calls in flight across the turn
//! held is not carried into the next day); a budget over the run lives until 30 days without a
//! call, the fleet having no run of its own.

use std::time::Duration;

use crate::units::tenant::Tenant;

use super::connection::{Call, Lua};
use super::family::SharedFamily;

/// How long a budget over the run is kept after its tenant's last call.
const TOTAL_BUDGET_IDLE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long a per-day budget counts from its first call.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A tenant's budget as the fleet keeps it: the limits in tokens and nano-dollars (`None`:
/// unlimited), and whether it counts per day.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedLimit {
    pub(crate) tokens: Option<u64>,
    pub(crate) nanodollars: Option<u64>,
    pub(crate) per_day: bool,
}

/// What Redis said of a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BudgetAnswer {
    Held,
    /// Refused: the budget has `left` tokens (or nano-dollars, if `usd`) left.
    Refused {
        usd: bool,
        left: u64,
    },
}

impl SharedFamily {
    fn budget_key(&self, tenant: &Tenant) -> std::sync::Arc<str> {
        format!("{}{}", self.inner.budget_prefix, tenant.as_str()).into()
    }

    /// Holds `tokens` and `nanodollars` on `tenant`'s budget shared by the fleet; `None` when
    /// Redis did not answer (the call is then held on this process's ledger alone).
    pub(crate) async fn hold_budget(
        &self,
        tenant: &Tenant,
        limit: SharedLimit,
        tokens: u64,
        nanodollars: u64,
    ) -> Option<BudgetAnswer> {
        let or_none = |limit: Option<u64>| limit.map_or_else(|| "-1".to_owned(), |v| v.to_string());
        let lives = if limit.per_day {
            DAY
        } else {
            TOTAL_BUDGET_IDLE
        };
        let call = Call {
            keys: vec![self.budget_key(tenant)],
            args: vec![
                "hold".to_owned(),
                or_none(limit.tokens),
                or_none(limit.nanodollars),
                tokens.to_string(),
                nanodollars.to_string(),
                lives.as_millis().to_string(),
                if limit.per_day { "0" } else { "1" }.to_owned(),
            ],
            // Sent again after a reply lost on the way, it would hold twice.
            once: true,
            lua: Lua::Budget,
        };
        let answer = self.store().invoke(&call, |reply| match *reply {
            [1, _, _] => Ok(BudgetAnswer::Held),
            [0, kind, left] => Ok(BudgetAnswer::Refused {
                usd: kind == 1,
                left: u64::try_from(left).unwrap_or(0),
            }),
            ref other => Err(format!("an unexpected reply to a budget hold: {other:?}")),
        });
        answer.await.ok()
    }

    /// Moves what a call holds on `tenant`'s shared budget by `tokens` and `nanodollars`
    /// (negative: given back), without waiting.
    pub(crate) fn settle_budget(&self, tenant: &Tenant, tokens: i128, nanodollars: i128) {
        if tokens == 0 && nanodollars == 0 {
            return;
        }
        let call = Call {
            keys: vec![self.budget_key(tenant)],
            args: vec![
                "settle".to_owned(),
                tokens.to_string(),
                nanodollars.to_string(),
            ],
            once: true,
            lua: Lua::Budget,
        };
        self.send(call);
    }
}
