//! What a family keeps for long runs next to its limiters: the circuit breaker, the spend
//! ledgers, the price and the running stats, and the two guards a call holds while it waits
//! and while it is in flight, so that a dropped future is still counted and released.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::answers::classify::Verdict;
use crate::answers::retry::Action;
use crate::family::breaker::{Breaker, Outcome, Pass};
use crate::family::events;
use crate::family::spend::{Hold, Ledger};
use crate::family::stats::{Counters, FamilyStats};
use crate::family::tenants::Tenants;
use crate::limiter::Limiter;
use crate::model::limit_family::LimitFamily;
use crate::model::prices::Price;
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension, Usage};
use crate::units::error::Error;
#[cfg(feature = "redis")]
use crate::units::money::Amount;
use crate::units::money::{BudgetPeriod, Nanodollars, SpendLimit};
use crate::units::tenant::Tenant;

/// One family's breaker, ledgers, price and counts: one per family, shared by the limiters of
/// every tier its calls name (a limiter is per tier, because limits differ by tier).
///
/// - The budget binds the family whatever the tier: it guards money, and a call costs the same
///   on any tier, so a copy per tier would multiply the "per family" budget by the tiers used.
/// - The breaker is the family's too: it guards the provider's health for that family, and a
///   provider returning 5xx for a model fails its calls whichever tier's limits they waited on;
///   a breaker per tier would keep sending to a provider that is down, once per tier.
/// - So the stats show the family whole, with every tier it used.
#[derive(Debug)]
pub(crate) struct FamilyState {
    family: LimitFamily,
    price: Option<Price>,
    cooldown: Duration,
    inner: Mutex<Inner>,
    /// `None` when the process has no budget: nothing to lock on the hot path.
    process_budget: Option<Arc<Mutex<Ledger>>>,
    /// With Redis, where the tenants' budgets are shared by the fleet (see `store/budget.rs`).
    #[cfg(feature = "redis")]
    shared_store: std::sync::OnceLock<crate::store::SharedFamily>,
}

#[derive(Debug)]
struct Inner {
    counters: Counters,
    breaker: Breaker,
    budget: Ledger,
    /// The tiers whose limiters draw on this state.
    tiers: BTreeSet<String>,
    /// Whether a drift of the prompt estimates was told (once per family).
    drift_told: bool,
    /// Budgets this family shares with others: those of the deployment pools it serves in.
    shared_budgets: Vec<Arc<Mutex<Ledger>>>,
    /// Each tenant's budget and the top tenants.
    tenants: Tenants,
}

/// What configures a family's state.
pub(crate) struct FamilyPolicy {
    pub(crate) price: Option<Price>,
    pub(crate) budget: SpendLimit,
    /// Every tenant's budget (`RATE_LIMITED_<FAMILY>_TENANT_BUDGET_*`), and single tenants'
    /// set in code.
    pub(crate) tenant_budget: SpendLimit,
    /// Over what the tenants' budgets count (`RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD`).
    pub(crate) tenant_budget_period: BudgetPeriod,
    pub(crate) tenant_budgets: HashMap<Tenant, SpendLimit>,
    pub(crate) breaker_failures: u32,
    pub(crate) breaker_cooldown: Duration,
}

impl FamilyState {
    pub(crate) fn new(
        family: LimitFamily,
        policy: FamilyPolicy,
        process_budget: Option<Arc<Mutex<Ledger>>>,
    ) -> Self {
        FamilyState {
            inner: Mutex::new(Inner {
                counters: Counters::default(),
                breaker: Breaker::new(policy.breaker_failures, policy.breaker_cooldown),
                budget: Ledger::new(format!("the {family}"), policy.budget),
                tiers: BTreeSet::new(),
                drift_told: false,
                shared_budgets: Vec::new(),
                tenants: Tenants::new(
                    family.to_string(),
                    policy.tenant_budget,
                    policy.tenant_budget_period,
                    policy.tenant_budgets,
                ),
            }),
            family,
            price: policy.price,
            cooldown: policy.breaker_cooldown,
            process_budget,
            #[cfg(feature = "redis")]
            shared_store: std::sync::OnceLock::new(),
        }
    }

    /// Shares the tenants' budgets through `store` (the family's Redis state; the first tier's
    /// serves them all).
    #[cfg(feature = "redis")]
    pub(crate) fn share_tenant_budgets(&self, store: crate::store::SharedFamily) {
        let _ = self.shared_store.set(store);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    /// Records that the limiter of `tier` draws on this state, for the stats.
    pub(crate) fn add_tier(&self, tier: &str) {
        self.lock().tiers.insert(tier.to_owned());
    }

    /// Makes every call of this family count on `ledger` too (a deployment pool's budget),
    /// from now on.
    pub(crate) fn share_budget(&self, ledger: Arc<Mutex<Ledger>>) {
        self.lock().shared_budgets.push(ledger);
    }

    /// Whether the family has a price (a dollar budget can bind it).
    pub(crate) fn has_price(&self) -> bool {
        self.price.is_some()
    }

    /// What a reservation of `cost` holds on a budget: its tokens, and its dollars at the
    /// family's price.
    pub(crate) fn hold_of(&self, cost: &Cost) -> Hold {
        Hold {
            tokens: cost.tokens(),
            usd: self.dollars(|price| price.of_reservation(*cost)),
        }
    }

    /// `usd` at the ledger boundary: whole nano-dollars from here on; zero with no price.
    fn dollars(&self, usd: impl FnOnce(Price) -> f64) -> Nanodollars {
        self.price
            .map_or(Nanodollars::ZERO, |price| Nanodollars::from_usd(usd(price)))
    }

    /// Checks the breaker and the budgets before an attempt waits (for `tenant`, its budget
    /// too): refuses at once, or holds the attempt's reservation on the budgets and counts it
    /// as waiting, and as the tenant's in the stats.
    ///
    /// # Errors
    /// [`Error::CircuitOpen`], [`Error::BudgetExhausted`] (naming the tenant for the tenant's
    /// budget).
    pub(crate) fn before_send_for(
        self: &Arc<Self>,
        cost: &Cost,
        tenant: Option<&Tenant>,
    ) -> Result<Pending, Error> {
        let hold = self.hold_of(cost);
        let mut inner = self.lock();
        inner.counters.issued += 1;
        let pass = match inner.breaker.admit(Instant::now) {
            Ok((pass, transition)) => {
                if let Some(transition) = transition {
                    events::breaker(&self.family, transition, 0, self.cooldown);
                }
                pass
            }
            Err(retry_in) => {
                inner.counters.refused += 1;
                let error = Error::CircuitOpen {
                    family: self.family.to_string(),
                    retry_in,
                };
                #[cfg(feature = "metrics")]
                {
                    crate::family::metrics::refused(&self.family, &error);
                    self.publish(&inner);
                }
                return Err(error);
            }
        };
        let mut process = self.process_budget.as_ref().map(|ledger| ledger.locked());
        let shared = inner.shared_budgets.clone();
        let mut shared: Vec<_> = shared.iter().map(|ledger| ledger.locked()).collect();
        let checked = inner
            .budget
            .check(hold)
            .and_then(|()| match &process {
                Some(process) => process.check(hold),
                None => Ok(()),
            })
            .and_then(|()| shared.iter().try_for_each(|ledger| ledger.check(hold)))
            .and_then(|()| match tenant {
                // Checked and held at once, and only when every other budget has room.
                Some(tenant) => inner.tenants.hold(tenant, hold, Instant::now()),
                None => Ok(()),
            });
        if let Err(error) = checked {
            inner.counters.refused += 1;
            if pass == Pass::Probe {
                inner.breaker.probe_abandoned();
            }
            events::refused(&self.family, tenant, &error);
            #[cfg(feature = "metrics")]
            {
                crate::family::metrics::refused(&self.family, &error);
                self.publish(&inner);
            }
            return Err(error);
        }
        inner.budget.hold(hold);
        if let Some(process) = &mut process {
            process.hold(hold);
        }
        for ledger in &mut shared {
            ledger.hold(hold);
        }
        drop(shared);
        drop(process);
        inner.counters.waiting += 1;
        #[cfg(feature = "metrics")]
        self.publish(&inner);
        Ok(Pending {
            state: Some(Arc::clone(self)),
            pass,
            hold,
            started: Instant::now(),
            tenant: tenant.cloned(),
            shared: false,
        })
    }

    /// [`before_send_for`](FamilyState::before_send_for), and with Redis the hold on the
    /// tenant's budget the fleet shares (see [`Pending::hold_shared`]).
    ///
    /// # Errors
    /// As `before_send_for`; [`Error::BudgetExhausted`] when the fleet spent the tenant's
    /// budget (the attempt is then refused here).
    pub(crate) async fn before_send_held(
        self: &Arc<Self>,
        cost: &Cost,
        tenant: Option<&Tenant>,
    ) -> Result<Pending, Error> {
        let mut pending = self.before_send_for(cost, tenant)?;
        match pending.hold_shared().await {
            Ok(()) => Ok(pending),
            Err(error) => Err(pending.refuse(error)),
        }
    }

    /// The error [`before_send_for`](FamilyState::before_send_for) would refuse with because of the
    /// breaker, without counting or passing anything: for a pool choosing a deployment.
    pub(crate) fn breaker_refusal(&self) -> Option<Error> {
        let retry_in = self.lock().breaker.refusal(Instant::now())?;
        Some(Error::CircuitOpen {
            family: self.family.to_string(),
            retry_in,
        })
    }

    /// The family's snapshot, taken under one short lock.
    pub(crate) fn snapshot(&self) -> FamilyStats {
        let inner = self.lock();
        let c = &inner.counters;
        let (top_tenants_by_tokens, top_tenants_by_wait) = inner.tenants.top();
        FamilyStats {
            family: self.family.id.clone(),
            provider: self.family.provider.to_string(),
            tiers: inner.tiers.iter().cloned().collect(),
            issued: c.issued,
            admitted: c.admitted,
            refused: c.refused,
            cancelled: c.cancelled,
            waiting: c.waiting,
            in_flight: c.in_flight,
            total_wait: c.total_wait,
            max_wait: c.max_wait,
            retries: c.retries,
            rate_limited: c.rate_limited,
            transient_failures: c.transient_failures,
            breaker: inner.breaker.state(),
            reserved_tokens: c.reserved_tokens,
            charged_tokens: c.charged_tokens,
            reported_calls: c.reported_calls,
            estimated_input_tokens: c.estimated_input_tokens,
            reported_input_tokens: c.reported_input_tokens,
            reported_output_tokens: c.reported_output_tokens,
            cost_usd: self.price.map(|_| c.cost.to_usd()),
            budget_left: inner.budget.left(),
            top_tenants_by_tokens,
            top_tenants_by_wait,
        }
    }

    /// Sets the family's gauges from its counts.
    #[cfg(feature = "metrics")]
    fn publish(&self, inner: &Inner) {
        let c = &inner.counters;
        crate::family::metrics::gauges(
            &self.family,
            &crate::family::metrics::Gauges {
                in_flight: c.in_flight,
                waiting: c.waiting,
                breaker: inner.breaker.state(),
                budget_left: inner.budget.left(),
                estimate: (c.estimated_input_tokens, c.reported_input_tokens),
            },
        );
    }

    /// Settles every budget (`tenant`'s too, in Redis as well if it was `shared` there):
    /// `held` released, `spent` recorded.
    fn settle_budgets(
        &self,
        inner: &mut Inner,
        tenant: Option<&Tenant>,
        shared: bool,
        held: Hold,
        spent: Hold,
    ) {
        if let Some(tenant) = tenant {
            inner.tenants.settle(tenant, held, spent);
            #[cfg(feature = "redis")]
            if let (true, Some(store)) = (shared, self.shared_store.get()) {
                let tokens = i128::from(spent.tokens) - i128::from(held.tokens);
                let nanos = i128::from(spent.usd.nanos()) - i128::from(held.usd.nanos());
                store.settle_budget(tenant, tokens, nanos);
            }
        }
        #[cfg(not(feature = "redis"))]
        let _ = shared;
        inner.budget.settle(held, spent);
        if let Some(process) = &self.process_budget {
            process.locked().settle(held, spent);
        }
        for ledger in &inner.shared_budgets {
            ledger.locked().settle(held, spent);
        }
    }

    fn breaker_outcome(&self, inner: &mut Inner, pass: Pass, outcome: Outcome) {
        let failures = inner.breaker.failures().saturating_add(1);
        if let Some(transition) = inner.breaker.record(pass, outcome, Instant::now) {
            events::breaker(&self.family, transition, failures, self.cooldown);
        }
    }
}

/// An attempt waiting for the limiter. Dropped, it counts as cancelled and releases its holds.
#[must_use]
#[derive(Debug)]
pub(crate) struct Pending {
    state: Option<Arc<FamilyState>>,
    pass: Pass,
    hold: Hold,
    started: Instant,
    tenant: Option<Tenant>,
    /// Whether it holds its tenant's budget in Redis too.
    shared: bool,
}

impl Pending {
    /// With Redis, holds the attempt on its tenant's budget shared by the fleet too (after
    /// this process's ledgers agreed): a fleet of processes spends one budget.
    ///
    /// # Errors
    /// [`Error::BudgetExhausted`] naming the tenant's budget, when the fleet spent it; the
    /// caller then [refuses](Pending::refuse) the attempt.
    pub(crate) async fn hold_shared(&mut self) -> Result<(), Error> {
        #[cfg(feature = "redis")]
        {
            let (Some(state), Some(tenant)) = (&self.state, &self.tenant) else {
                return Ok(());
            };
            let Some(store) = state.shared_store.get() else {
                return Ok(());
            };
            let Some((limit, owner)) = state.lock().tenants.shared_limit(tenant) else {
                return Ok(());
            };
            let (tokens, nanos) = (self.hold.tokens, self.hold.usd.nanos());
            match store.hold_budget(tenant, limit, tokens, nanos).await {
                Some(crate::store::BudgetAnswer::Held) => self.shared = true,
                Some(crate::store::BudgetAnswer::Refused { usd, left }) => {
                    let error = if usd {
                        Error::BudgetExhausted {
                            budget: format!("{owner} USD budget"),
                            remaining: Amount::Usd(Nanodollars::from_nanos(left).to_usd()),
                            requested: Amount::Usd(self.hold.usd.to_usd()),
                        }
                    } else {
                        Error::BudgetExhausted {
                            budget: format!("{owner} token budget"),
                            remaining: Amount::Tokens(left),
                            requested: Amount::Tokens(tokens),
                        }
                    };
                    events::refused(&state.family, Some(tenant), &error);
                    return Err(error);
                }
                // Redis did not answer: this process's ledger alone holds it.
                None => {}
            }
        }
        Ok(())
    }

    /// The limiter refused the attempt (too large, backend down).
    pub(crate) fn refuse(mut self, error: Error) -> Error {
        if let Some(state) = self.state.take() {
            let mut inner = state.lock();
            inner.counters.waiting -= 1;
            inner.counters.refused += 1;
            self.release(&state, &mut inner);
            #[cfg(feature = "metrics")]
            {
                crate::family::metrics::refused(&state.family, &error);
                state.publish(&inner);
            }
        }
        error
    }

    /// The limiter admitted the attempt, which is sent next.
    pub(crate) fn admitted(self, cost: Cost, limiter: &Limiter) -> InFlight {
        self.admitted_after(cost, limiter, None)
    }

    /// [`admitted`](Pending::admitted), for a pool's call that waited `in_pool` in the pool's
    /// queue before this family saw it: the tenant's stats count that wait, as they count a
    /// single family's call's wait in its limiter (the family's own wait counts stay its own).
    pub(crate) fn admitted_from_pool(
        self,
        cost: Cost,
        limiter: &Limiter,
        in_pool: Duration,
    ) -> InFlight {
        self.admitted_after(cost, limiter, Some(in_pool))
    }

    fn admitted_after(
        mut self,
        cost: Cost,
        limiter: &Limiter,
        in_pool: Option<Duration>,
    ) -> InFlight {
        let state = self
            .state
            .take()
            .expect("a pending attempt is admitted once");
        let waited = self.started.elapsed();
        {
            let mut inner = state.lock();
            let c = &mut inner.counters;
            c.waiting -= 1;
            c.admitted += 1;
            c.in_flight += 1;
            c.total_wait += waited;
            c.max_wait = c.max_wait.max(waited);
            c.reserved_tokens = c.reserved_tokens.saturating_add(cost.tokens());
            if let Some(tenant) = &self.tenant {
                inner.tenants.admitted(tenant, in_pool.unwrap_or(waited));
            }
            #[cfg(feature = "metrics")]
            {
                crate::family::metrics::admitted(&state.family, waited);
                state.publish(&inner);
            }
        }
        if waited > events::LONG_WAIT {
            let quota = limiter.quota();
            events::waited(
                &state.family,
                self.tenant.as_ref(),
                waited,
                cost,
                limiter.in_use(Dimension::TokensPerMinute),
                quota.capacity(Dimension::TokensPerMinute),
            );
        }
        InFlight {
            state: Some(state),
            breaker: Some(self.pass),
            hold: self.hold,
            tenant: self.tenant.take(),
            shared: self.shared,
            #[cfg(feature = "metrics")]
            admitted_at: Instant::now(),
        }
    }

    fn release(&self, state: &FamilyState, inner: &mut Inner) {
        let tenant = self.tenant.as_ref();
        state.settle_budgets(inner, tenant, self.shared, self.hold, Hold::default());
        if self.pass == Pass::Probe {
            inner.breaker.probe_abandoned();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let mut inner = state.lock();
            inner.counters.waiting -= 1;
            inner.counters.cancelled += 1;
            self.release(&state, &mut inner);
            #[cfg(feature = "metrics")]
            state.publish(&inner);
        }
    }
}

/// An admitted attempt until its answer is settled: a whole response when it is read, a
/// stream when it ends. Dropped unsettled (a stream dropped before its end, a future dropped
/// after sending), it keeps its whole reservation as spent.
#[must_use]
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Option<Arc<FamilyState>>,
    /// The breaker's pass, until the breaker has heard how the attempt went.
    breaker: Option<Pass>,
    hold: Hold,
    tenant: Option<Tenant>,
    /// Whether it holds its tenant's budget in Redis too.
    shared: bool,
    /// When it was admitted: its operation's duration runs from here.
    #[cfg(feature = "metrics")]
    admitted_at: Instant,
}

impl InFlight {
    /// The server answered and its answer is being read (a stream): the breaker hears of the
    /// success now, so a stream that runs for minutes neither holds a probe open nor leaves a
    /// run of failures standing; the stats and budgets settle when it ends.
    pub(crate) fn answered(&mut self) {
        if let (Some(state), Some(pass)) = (&self.state, self.breaker.take()) {
            let mut inner = state.lock();
            state.breaker_outcome(&mut inner, pass, Outcome::Answered);
        }
    }

    /// A successful answer: `reserved` was held on the limiter, `charged` is what it was
    /// settled to, `reported` the usage the response gave, if any.
    pub(crate) fn succeeded(
        mut self,
        reserved: Cost,
        charged: Option<Usage>,
        reported: Option<Usage>,
    ) {
        let Some(state) = self.state.take() else {
            return;
        };
        let mut inner = state.lock();
        let spent = match reported {
            Some(usage) => Hold {
                tokens: usage.input_tokens.saturating_add(usage.output_tokens),
                usd: state.dollars(|price| price.of_usage(usage)),
            },
            None => self.hold,
        };
        let inner = &mut *inner;
        let c = &mut inner.counters;
        c.in_flight -= 1;
        let charged = charged.map_or(reserved.tokens(), |u| u.input_tokens + u.output_tokens);
        c.charged_tokens = c.charged_tokens.saturating_add(charged);
        if let Some(usage) = reported {
            c.reported_calls += 1;
            c.estimated_input_tokens += reserved.input_tokens;
            c.reported_input_tokens += usage.input_tokens;
            c.reported_output_tokens += usage.output_tokens;
            if !inner.drift_told && c.reported_calls >= events::ESTIMATE_DRIFT_CALLS {
                inner.drift_told = events::estimate_drift(
                    &state.family,
                    c.reported_calls,
                    c.estimated_input_tokens,
                    c.reported_input_tokens,
                );
            }
        }
        c.cost = c.cost.saturating_add(spent.usd);
        state.settle_budgets(inner, self.tenant.as_ref(), self.shared, self.hold, spent);
        if let Some(tenant) = &self.tenant {
            inner.tenants.used(tenant, spent.tokens);
        }
        if let Some(pass) = self.breaker.take() {
            state.breaker_outcome(inner, pass, Outcome::Answered);
        }
        #[cfg(feature = "metrics")]
        {
            let took = self.admitted_at.elapsed();
            crate::family::metrics::succeeded(&state.family, took, charged, reported);
            state.publish(inner);
        }
    }

    /// A failed answer, and what the retry policy made of it.
    pub(crate) fn failed(mut self, verdict: &Verdict, action: &Action) {
        let Some(state) = self.state.take() else {
            return;
        };
        let mut inner = state.lock();
        let c = &mut inner.counters;
        c.in_flight -= 1;
        let (outcome, reason) = match verdict {
            Verdict::RateLimited { .. } => {
                c.rate_limited += 1;
                (Outcome::Answered, "a 429")
            }
            Verdict::Transient { .. } => {
                c.transient_failures += 1;
                (Outcome::TransientFailure, "a transient failure")
            }
            _ => (Outcome::Answered, "an error"),
        };
        #[cfg(feature = "metrics")]
        let retried = matches!(action, Action::Retry { .. });
        if let Action::Retry { wait, hold_family } = *action {
            if hold_family {
                c.retries.rate_limited += 1;
            } else {
                c.retries.transient += 1;
            }
            events::retrying(&state.family, self.tenant.as_ref(), reason, wait);
        }
        // Providers bill answers, not errors.
        let (tenant, shared) = (self.tenant.as_ref(), self.shared);
        state.settle_budgets(&mut inner, tenant, shared, self.hold, Hold::default());
        if let Some(pass) = self.breaker.take() {
            state.breaker_outcome(&mut inner, pass, outcome);
        }
        #[cfg(feature = "metrics")]
        {
            let took = self.admitted_at.elapsed();
            crate::family::metrics::failed(&state.family, took, verdict, retried);
            state.publish(&inner);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let mut inner = state.lock();
            inner.counters.in_flight -= 1;
            inner.counters.cost = inner.counters.cost.saturating_add(self.hold.usd);
            let (tenant, shared) = (self.tenant.as_ref(), self.shared);
            state.settle_budgets(&mut inner, tenant, shared, self.hold, self.hold);
            if let Some(tenant) = &self.tenant {
                inner.tenants.used(tenant, self.hold.tokens);
            }
            if self.breaker == Some(Pass::Probe) {
                inner.breaker.probe_abandoned();
            }
            #[cfg(feature = "metrics")]
            state.publish(&inner);
        }
    }
}
