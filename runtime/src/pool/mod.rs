//! Deployment pools: one logical model served by several deployments, each with its own
//! limiter and family state, and every attempt routed to the deployment that admits it
//! soonest.
//!
//! Bottom up: `route` (which deployment takes a call, given when each would admit it),
//! `queue` (the pool's FIFO across its deployments), `stats` (its snapshot), `events` (its
//! `tracing` events), and here the handles: [`Pool`], [`Deployment`] and [`PoolReservation`]. What a pool is made of is
//! [`config::pool`](crate::config::pool); the [`Registry`](crate::Registry) builds pools
//! from it.
//!
//! How it stays fair is on [`Pool`].

mod queue;

mod route;

mod shared;

mod stats;

mod events;

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::pool::{DeploymentConfig, Routing};
use crate::config::ModelProfile;
use crate::family::feedback::FamilyFeedback;
use crate::family::feedback::OpeningPermit;
use crate::family::spend::{BudgetLeft, Ledger};
use crate::family::state::FamilyState;
use crate::limiter::lanes::Priority;
use crate::limiter::{Forecast, Limiter, Reservation};
use crate::sync::Locked;
use crate::units::cost::{Cost, Usage};
use crate::units::error::{Error, Refusal};
use crate::units::tenant::Tenant;
use queue::{Queue, SitOut, Ticket};
use route::Candidate;
pub use stats::{DeploymentStats, PoolStats};

/// One deployment of a [`Pool`]: its limiter and family state (breaker, budgets, stats, header
/// feedback), its profile, and what your client needs to reach it.
#[derive(Clone)]
pub struct Deployment {
    config: DeploymentConfig,
    limiter: Limiter,
    profile: Arc<ModelProfile>,
    pub(crate) feedback: Arc<FamilyFeedback>,
    pub(crate) state: Arc<FamilyState>,
}

impl Deployment {
    pub(crate) fn new(
        config: DeploymentConfig,
        limiter: Limiter,
        profile: Arc<ModelProfile>,
        feedback: Arc<FamilyFeedback>,
        state: Arc<FamilyState>,
    ) -> Self {
        Deployment {
            config,
            limiter,
            profile,
            feedback,
            state,
        }
    }

    /// Its name in the pool (`east`).
    pub fn name(&self) -> &str {
        self.config.name()
    }

    /// The model it serves, as configured (`azure/gpt-4o`).
    pub fn model(&self) -> &str {
        self.config.model()
    }

    /// Where your client sends its requests (`RATE_LIMITED_<DEPLOYMENT>_ENDPOINT`), if set.
    pub fn endpoint(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// The name of the variable holding its key (`RATE_LIMITED_<DEPLOYMENT>_KEY_VAR`), if set.
    pub fn key_var(&self) -> Option<&str> {
        self.config.key_var_name()
    }

    /// Its limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Its family (the deployment's name under its provider), tier, quota and provider rules.
    pub fn profile(&self) -> &ModelProfile {
        &self.profile
    }

    pub(crate) fn profile_arc(&self) -> &Arc<ModelProfile> {
        &self.profile
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("name", &self.name())
            .field("model", &self.model())
            .field("quota", &self.profile.quota)
            .finish_non_exhaustive()
    }
}

/// A deployment pool: routes each acquisition to the deployment that admits its whole cost
/// soonest (or in strict order with spill-over), FIFO across the pool.
///
/// **Fairness.** A pool keeps one queue of its own, FIFO within each priority lane (the lanes
/// and their guaranteed shares as on a [`Limiter`]). Only its head routes: it asks every
/// deployment when the *whole* cost would be admitted ([`Limiter::forecast`]), queues on the
/// soonest one, and keeps the turn until it is admitted there; whoever is behind waits for it.
/// So a large request is never passed by small ones that would fit a smaller deployment sooner,
/// and each admission goes to the deployment that frees first, which over a run gives every
/// deployment a share of the calls proportional to its limits. The price is the one a FIFO
/// limiter pays too: while the head waits, a smaller request behind it that some deployment
/// could take now waits as well. The head re-routes when the pool changes (a reservation ends,
/// a deployment is held by a 429, a breaker opens): it moves when another deployment would now
/// admit it strictly sooner.
///
/// The alternative, enqueueing each call on the soonest deployment as it arrives, lets calls
/// behind a large one go ahead of it on other deployments, and commits a call to a queue whose
/// wait can only grow (a 429 there holds it while another deployment sits idle).
///
/// Get one from [`Registry::pool`](crate::Registry::pool). Cloning is cheap and every clone
/// shares the same queue and deployments.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::pool::{DeploymentConfig, PoolConfig};
/// use ratelimited::{limiter::Cost, Quota, Registry, Usage};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
/// let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
///     PoolConfig::new("gpt-4o")
///         .deployment(DeploymentConfig::new("east", "azure/gpt-4o").quota(Quota::default().tpm(100_000)))
///         .deployment(DeploymentConfig::new("west", "azure/gpt-4o").quota(Quota::default().tpm(50_000))),
/// );
/// let pool = registry.pool("gpt-4o")?;
/// let reservation = pool.acquire(Cost::request(90_000, 1_000)).await?;
/// assert_eq!(reservation.deployment().name(), "east");
/// // Only east could take 91,000 tokens at once; west takes the next one.
/// let next = pool.acquire(Cost::request(20_000, 1_000)).await?;
/// assert_eq!(next.deployment().name(), "west");
/// reservation.settle(Usage::new(90_000, 800));
/// # drop(next); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    routing: Routing,
    cooldown: Duration,
    deployments: Vec<Deployment>,
    queue: Arc<Queue>,
    /// Per deployment: out of quota (or money) until then, with what the provider said.
    skipped: Mutex<Vec<Option<(Instant, String)>>>,
    /// What the deployments may use together; every deployment's family counts on it too.
    budget: Option<Arc<Mutex<Ledger>>>,
    counters: Mutex<stats::Counters>,
}

impl Pool {
    pub(crate) fn new(
        name: &str,
        routing: Routing,
        cooldown: Duration,
        deployments: Vec<Deployment>,
        budget: Option<Arc<Mutex<Ledger>>>,
    ) -> Self {
        let skipped = Mutex::new(vec![None; deployments.len()]);
        let counters = stats::Counters {
            routed: vec![(0, 0); deployments.len()],
            ..stats::Counters::default()
        };
        Pool {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                routing,
                cooldown,
                deployments,
                queue: Arc::new(Queue::new()),
                skipped,
                budget,
                counters: Mutex::new(counters),
            }),
        }
    }

    /// The ledger of a pool budget: how its refusals name it.
    pub(crate) fn budget_ledger(name: &str, limit: crate::units::money::SpendLimit) -> Ledger {
        Ledger::new(format!("the pool `{name}`"), limit)
    }

    /// What the pool's budget has left (`None` fields where unlimited).
    pub fn budget_left(&self) -> BudgetLeft {
        self.shared
            .budget
            .as_ref()
            .map(|ledger| ledger.locked().left())
            .unwrap_or_default()
    }

    /// What the pool has done so far: per deployment what it routed there (admissions,
    /// tokens, share), its 429s, breaker and family snapshot; for the pool, its queue's waits
    /// and its budget. Cheap: one short lock per deployment.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::pool::{DeploymentConfig, PoolConfig};
    /// use ratelimited::{limiter::Cost, Quota, Registry, Usage};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
    /// let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
    ///     PoolConfig::new("gpt-4o")
    ///         .deployment(DeploymentConfig::new("east", "azure/gpt-4o").quota(Quota::default().tpm(100_000)))
    ///         .deployment(DeploymentConfig::new("west", "azure/gpt-4o").quota(Quota::default().tpm(50_000))),
    /// );
    /// let pool = registry.pool("gpt-4o")?;
    /// pool.acquire(Cost::request(3_000, 1_000)).await?.settle(Usage::new(3_000, 1_000));
    /// let stats = pool.stats();
    /// assert_eq!(stats.admitted, 1);
    /// assert_eq!(stats.deployment("east").unwrap().tokens, 4_000);
    /// assert_eq!(stats.deployment("east").unwrap().share, 1.0);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> PoolStats {
        let counters = self.shared.counters.locked().clone();
        let skipped = self.shared.skipped.locked().clone();
        let now = Instant::now();
        let tokens: u64 = counters.routed.iter().map(|(_, tokens)| tokens).sum();
        let deployments = self
            .shared
            .deployments
            .iter()
            .zip(&counters.routed)
            .zip(&skipped)
            .map(|((deployment, &(admitted, routed)), skipped)| {
                let family = deployment.state.snapshot();
                DeploymentStats {
                    name: deployment.name().to_owned(),
                    admitted,
                    tokens: routed,
                    share: if tokens == 0 {
                        0.0
                    } else {
                        routed as f64 / tokens as f64
                    },
                    rate_limited: family.rate_limited,
                    breaker: family.breaker,
                    skipped_for: skipped
                        .as_ref()
                        .filter(|(until, _)| *until > now)
                        .map(|(until, _)| *until - now),
                    family,
                }
            })
            .collect();
        PoolStats {
            pool: self.shared.name.clone(),
            deployments,
            issued: counters.issued,
            admitted: counters.admitted,
            refused: counters.refused,
            cancelled: counters.cancelled,
            waiting: counters.waiting,
            total_wait: counters.total_wait,
            max_wait: counters.max_wait,
            tokens,
            budget_left: self.budget_left(),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// How it routes.
    pub fn routing(&self) -> Routing {
        self.shared.routing
    }

    /// Its deployments, in order.
    pub fn deployments(&self) -> &[Deployment] {
        &self.shared.deployments
    }

    /// The deployment called `name`.
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.index_of(name).map(|i| &self.shared.deployments[i])
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.shared
            .deployments
            .iter()
            .position(|d| d.name().eq_ignore_ascii_case(name))
    }

    /// Waits for the deployment that admits `cost` soonest and reserves it there, in the
    /// [`Priority::Normal`] lane.
    ///
    /// # Errors
    /// [`Error::PoolRefused`] at once when no deployment can take it (each too small for the
    /// cost, its breaker open, or out of quota), naming each with its reason.
    pub async fn acquire(&self, cost: Cost) -> Result<PoolReservation, Error> {
        self.acquire_with(cost, Priority::Normal).await
    }

    /// Like [`acquire`](Pool::acquire), waiting in `priority`'s lane of the pool's queue.
    ///
    /// # Errors
    /// As [`Pool::acquire`].
    pub async fn acquire_with(
        &self,
        cost: Cost,
        priority: Priority,
    ) -> Result<PoolReservation, Error> {
        self.acquire_routed(&|_: &Deployment| cost, priority, None, &[], false)
            .await
    }

    /// Like [`acquire_with`](Pool::acquire_with), for `tenant`: in the pool's queue it takes
    /// turns with the other tenants of its lane (start-time fair queuing on tokens, as
    /// [`Limiter::acquire_for`] does on one limiter: a tenant that arrives behind another's
    /// backlog goes after at most one admission per tenant waiting), and on the deployment it
    /// is admitted with [`Limiter::acquire_for`], under the tenant's cap there. Routing counts
    /// the caps: a deployment where the tenant is at its cap is dated when the cap lets it in,
    /// and a tenant whose caps admit it nowhere now sits out, letting the other tenants go,
    /// until one refills (or a call ends, for a concurrency cap). Its weight in the pool's
    /// queue is the largest it has on the deployments ([`Limiter::set_tenant_weight`]).
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::pool::{DeploymentConfig, PoolConfig};
    /// use ratelimited::{limiter::Cost, Priority, Quota, Registry, Tenant};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
    /// let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
    ///     PoolConfig::new("gpt-4o")
    ///         .deployment(DeploymentConfig::new("east", "azure/gpt-4o").quota(Quota::default().tpm(100_000)))
    ///         .deployment(DeploymentConfig::new("west", "azure/gpt-4o").quota(Quota::default().tpm(50_000))),
    /// );
    /// let pool = registry.pool("gpt-4o")?;
    /// let acme = Tenant::from("acme");
    /// let reservation = pool.acquire_for(Cost::request(1_200, 256), Priority::Normal, &acme).await?;
    /// assert_eq!(reservation.deployment().name(), "east");
    /// assert_eq!(reservation.tenant(), Some(&acme));
    /// # drop(reservation); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::acquire`]; a cost larger than the tenant's cap on a deployment is too large
    /// there.
    pub async fn acquire_for(
        &self,
        cost: Cost,
        priority: Priority,
        tenant: &Tenant,
    ) -> Result<PoolReservation, Error> {
        self.acquire_routed(&|_: &Deployment| cost, priority, Some(tenant), &[], false)
            .await
    }

    /// `tenant`'s weight in the pool's queue: the largest it has on the deployments.
    fn weight_of(&self, tenant: Option<&Tenant>) -> u32 {
        tenant.map_or(1, |tenant| {
            self.shared
                .deployments
                .iter()
                .map(|d| d.limiter.tenant_weight(tenant))
                .max()
                .unwrap_or(1)
        })
    }

    /// Holds deployment `name` for `duration` (a 429's retry-after): only that deployment, and
    /// the pool routes around it meanwhile.
    pub fn hold_for(&self, name: &str, duration: Duration) {
        if let Some(i) = self.index_of(name) {
            self.hold_index(i, duration);
        }
    }

    pub(crate) fn hold_index(&self, index: usize, duration: Duration) {
        let deployment = &self.shared.deployments[index];
        deployment.limiter.hold_for(duration);
        events::held(&self.shared.name, deployment.name(), duration);
        self.changed();
    }

    /// Skips deployment `name` for the pool's quota cool-down
    /// ([`PoolConfig::quota_cooldown`](crate::config::pool::PoolConfig::quota_cooldown)): it
    /// answered `insufficient_quota` or a spend cap, and `message` is what it said.
    pub fn skip_out_of_quota(&self, name: &str, message: &str) {
        if let Some(i) = self.index_of(name) {
            self.skip_index(i, message);
        }
    }

    pub(crate) fn skip_index(&self, index: usize, message: &str) {
        let until = Instant::now() + self.shared.cooldown;
        self.shared.skipped.locked()[index] = Some((until, message.to_owned()));
        events::skipped(
            &self.shared.name,
            self.shared.deployments[index].name(),
            self.shared.cooldown,
            message,
        );
        self.changed();
    }

    /// Acquisitions waiting in the pool now.
    #[cfg(feature = "planner")]
    pub(crate) fn waiting(&self) -> u64 {
        self.shared.counters.locked().waiting
    }

    /// Something that routing depends on changed: the head re-routes.
    pub(crate) fn changed(&self) {
        self.shared.queue.wake_active();
    }

    /// Where each deployment stands for `cost_of` (for `tenant`, under its cap there), or why
    /// it refuses; `refused` are the refusals this call already met (a budget, a breaker that
    /// opened as it was admitted). The last part is the tenant's cap on each candidate, by
    /// index.
    fn survey(
        &self,
        cost_of: &dyn Fn(&Deployment) -> Cost,
        tenant: Option<&Tenant>,
        refused: &[(usize, Error)],
        gated: bool,
    ) -> (Vec<Candidate>, Vec<Refusal>, Vec<(usize, Forecast)>) {
        let now = Instant::now();
        let skipped = self.shared.skipped.locked().clone();
        let mut candidates = Vec::new();
        let mut refusals = Vec::new();
        let mut caps = Vec::new();
        for (index, deployment) in self.shared.deployments.iter().enumerate() {
            let refusal = if let Some((_, error)) = refused.iter().find(|(i, _)| *i == index) {
                Some(error.clone())
            } else if let Some((until, message)) = skipped[index].as_ref().filter(|s| s.0 > now) {
                Some(Error::QuotaExhausted {
                    message: format!(
                        "{message} (skipped for another {:.1} s)",
                        (*until - now).as_secs_f64()
                    ),
                })
            } else if let Some(open) = deployment.state.breaker_refusal() {
                Some(open)
            } else if let Some(spent) = self.budget_refusal(deployment, &cost_of(deployment)) {
                Some(spent)
            } else {
                match deployment.limiter.forecast(&cost_of(deployment)) {
                    Forecast::TooLarge {
                        dimension,
                        requested,
                        capacity,
                    } => Some(Error::RequestTooLarge {
                        dimension,
                        requested,
                        capacity,
                    }),
                    forecast => {
                        // Its opening burst spent: it takes the call only once its server has
                        // answered (or the gate's wait is over), after any deployment that can
                        // be dated.
                        let cost = cost_of(deployment);
                        let forecast = match forecast.earliest() {
                            Some(at)
                                if gated && !deployment.feedback.opening_would_admit(&cost) =>
                            {
                                Forecast::OnRelease { not_before: at }
                            }
                            _ => forecast,
                        };
                        let cap = tenant.map(|t| deployment.limiter.forecast_tenant_cap(&cost, t));
                        match cap {
                            Some(Forecast::TooLarge {
                                dimension,
                                requested,
                                capacity,
                            }) => Some(Error::RequestTooLarge {
                                dimension,
                                requested,
                                capacity,
                            }),
                            Some(cap) => {
                                let forecast = route::under_cap(forecast, cap);
                                candidates.push(Candidate { index, forecast });
                                caps.push((index, cap));
                                None
                            }
                            None => {
                                candidates.push(Candidate { index, forecast });
                                None
                            }
                        }
                    }
                }
            };
            if let Some(reason) = refusal {
                refusals.push(Refusal {
                    deployment: deployment.name().to_owned(),
                    reason,
                });
            }
        }
        (candidates, refusals, caps)
    }

    /// The pool budget's refusal of `cost` on `deployment` (at that deployment's price), if
    /// the budget cannot take it now.
    fn budget_refusal(&self, deployment: &Deployment, cost: &Cost) -> Option<Error> {
        let ledger = self.shared.budget.as_ref()?;
        let hold = deployment.state.hold_of(cost);
        let checked = ledger.locked().check(hold);
        checked.err()
    }

    /// `Some(error)` when every deployment refused for the pool's own budget: the call is
    /// refused with that budget's error rather than a list of the same reason.
    fn spent_budget(&self, refusals: &[Refusal]) -> Option<Error> {
        let owner = format!("the pool `{}` ", self.shared.name);
        let spent = |reason: &Error| matches!(reason, Error::BudgetExhausted { budget, .. } if budget.starts_with(&owner));
        (!refusals.is_empty() && refusals.iter().all(|r| spent(&r.reason)))
            .then(|| refusals[0].reason.clone())
    }

    /// Routes one acquisition: waits for the pool's turn, then for the chosen deployment,
    /// re-routing when the pool changes. `cost_of` is what the call costs on each deployment;
    /// `tenant` who it is for (turns in the queue, caps and admission on the deployment).
    /// `gated`: through each deployment's opening gate too, as a pool call is (its answers
    /// open the gate); the limiter-level API is not gated, as a [`Limiter`] is not.
    pub(crate) async fn acquire_routed(
        &self,
        cost_of: &(dyn Fn(&Deployment) -> Cost + Sync),
        priority: Priority,
        tenant: Option<&Tenant>,
        refused: &[(usize, Error)],
        gated: bool,
    ) -> Result<PoolReservation, Error> {
        let mut waiting = Waiting::new(self, tenant);
        let ticket = self
            .shared
            .queue
            .join(priority.lane(), tenant, self.weight_of(tenant));
        loop {
            // Our turn: routing, until admitted, a better claim arrives, or the tenant's caps
            // make it sit out.
            wait_for_turn(&ticket).await;
            let routed = self
                .route_while_head(&ticket, cost_of, priority, tenant, refused, gated)
                .await;
            match routed {
                Ok(Routed::Admitted(reservation)) => {
                    ticket.admitted(reservation.cost().tokens());
                    waiting.admitted(&reservation);
                    return Ok(reservation);
                }
                Ok(Routed::Yielded) => {}
                Ok(Routed::SitOut(sit_out)) => ticket.sit_out(sit_out),
                Err(error) => {
                    waiting.refused(&error);
                    return Err(error);
                }
            }
        }
    }

    /// The head's loop, until it is admitted, gives its turn to a better claim, or sits out
    /// its tenant's caps.
    async fn route_while_head(
        &self,
        ticket: &Ticket,
        cost_of: &(dyn Fn(&Deployment) -> Cost + Sync),
        priority: Priority,
        tenant: Option<&Tenant>,
        refused: &[(usize, Error)],
        gated: bool,
    ) -> Result<Routed, Error> {
        let routing = self.shared.routing;
        let mut refused = refused.to_vec();
        let mut committed: Option<(usize, Pin<Box<GatedAcquire>>)> = None;
        // The forecast a shared deployment had when the head committed to it.
        let mut committed_forecast: Option<(usize, Forecast)> = None;
        loop {
            let mut changed = pin!(ticket.wake.notified());
            changed.as_mut().enable();
            if ticket.yield_to_better_claim() {
                return Ok(Routed::Yielded);
            }
            let (mut candidates, mut refusals, caps) =
                self.survey(cost_of, tenant, &refused, gated);
            let kept =
                committed_forecast.filter(|(i, _)| committed.as_ref().is_some_and(|(c, _)| c == i));
            self.date_shared(&mut candidates, &mut refusals, cost_of, kept, tenant)
                .await;
            let now = Instant::now();
            let Some(best) = route::choose(routing, &candidates, now) else {
                return Err(self.spent_budget(&refusals).unwrap_or(Error::PoolRefused {
                    pool: self.shared.name.clone(),
                    refusals,
                }));
            };
            let caps: Vec<Forecast> = caps
                .into_iter()
                .filter(|(i, _)| candidates.iter().any(|c| c.index == *i))
                .map(|(_, cap)| cap)
                .collect();
            if let Some(sit_out) = route::sit_out(&caps, now) {
                // At its cap on every deployment: the other tenants go meanwhile.
                return Ok(Routed::SitOut(sit_out));
            }
            let current = committed
                .as_ref()
                .and_then(|(i, _)| candidates.iter().find(|c| c.index == *i));
            let stay = current.is_some_and(|current| !route::should_move(routing, current, &best));
            if !stay {
                let deployment = &self.shared.deployments[best.index];
                let cost = cost_of(deployment);
                // Through the deployment's opening gate first, as a single family's call is:
                // its first burst stays within a part of its limit until its server answers.
                let (feedback, limiter) =
                    (Arc::clone(&deployment.feedback), deployment.limiter.clone());
                let tenant = tenant.cloned();
                committed = Some((
                    best.index,
                    Box::pin(async move {
                        let opening = if gated {
                            feedback.admit_opening(&cost).await
                        } else {
                            OpeningPermit::none()
                        };
                        let reservation = match &tenant {
                            Some(tenant) => limiter.acquire_for(cost, priority, tenant).await,
                            None => limiter.acquire_with(cost, priority).await,
                        };
                        (opening, reservation)
                    }),
                ));
                committed_forecast = Some((best.index, best.forecast));
            }
            let (index, acquire) = committed.as_mut().expect("committed above");
            let index = *index;
            let outcome = poll_fn(|cx| {
                if let Poll::Ready(result) = acquire.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                changed.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match outcome {
                None => continue,
                Some((opening, Ok(reservation))) => {
                    return Ok(Routed::Admitted(PoolReservation {
                        reservation: Some(reservation),
                        opening: Some(opening),
                        index,
                        tenant: tenant.cloned(),
                        pool: self.clone(),
                    }))
                }
                // Too large after a limit change, or a shared store down and failing closed:
                // that deployment refuses; route among the others.
                Some((_, Err(error))) => {
                    refused.push((index, error));
                    committed = None;
                }
            }
        }
    }
}

/// How the head's routing ended, short of an error.
// Returned once per routing and taken apart at once: boxing the reservation would only add an
// allocation per admission.
#[allow(clippy::large_enum_variant)]
enum Routed {
    Admitted(PoolReservation),
    /// It gave its turn to a better claim.
    Yielded,
    /// Its tenant's caps admit it nowhere now.
    SitOut(SitOut),
}

/// Waits until it is `ticket`'s turn; a waiter sitting out its cap comes back when the cap
/// has refilled (or when the pool hands it the turn back after a call ended).
async fn wait_for_turn(ticket: &Ticket) {
    while !ticket.take_turn() {
        let until = ticket.sitting_out().and_then(|sit_out| sit_out.until);
        match until {
            Some(until) => {
                let mut woken = pin!(ticket.wake.notified());
                let mut refilled = pin!(tokio::time::sleep_until(until));
                let refilled = poll_fn(|cx| {
                    if refilled.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    woken.as_mut().poll(cx).map(|()| false)
                })
                .await;
                if refilled {
                    ticket.back_from_cap();
                }
            }
            None => ticket.wake.notified().await,
        }
    }
}

/// One acquisition while it is in the pool: counted as waiting until it is admitted, refused
/// or dropped.
struct Waiting<'p> {
    pool: &'p Pool,
    tenant: Option<&'p Tenant>,
    started: Instant,
    done: bool,
}

impl<'p> Waiting<'p> {
    fn new(pool: &'p Pool, tenant: Option<&'p Tenant>) -> Self {
        let mut counters = pool.shared.counters.locked();
        counters.issued += 1;
        counters.waiting += 1;
        Waiting {
            pool,
            tenant,
            started: Instant::now(),
            done: false,
        }
    }

    fn admitted(&mut self, reservation: &PoolReservation) {
        self.done = true;
        let waited = self.started.elapsed();
        let tokens = reservation.cost().tokens();
        {
            let mut counters = self.pool.shared.counters.locked();
            counters.waiting -= 1;
            counters.admitted += 1;
            counters.total_wait += waited;
            counters.max_wait = counters.max_wait.max(waited);
            let routed = &mut counters.routed[reservation.index];
            routed.0 += 1;
            routed.1 = routed.1.saturating_add(tokens);
        }
        let deployment = reservation.deployment().name();
        events::waited(
            &self.pool.shared.name,
            deployment,
            self.tenant,
            waited,
            tokens,
        );
    }

    fn refused(&mut self, error: &Error) {
        self.done = true;
        {
            let mut counters = self.pool.shared.counters.locked();
            counters.waiting -= 1;
            counters.refused += 1;
        }
        events::refused(&self.pool.shared.name, self.tenant, error);
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut counters = self.pool.shared.counters.locked();
            counters.waiting -= 1;
            counters.cancelled += 1;
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.shared.name)
            .field("routing", &self.shared.routing)
            .field("deployments", &self.shared.deployments)
            .finish_non_exhaustive()
    }
}

/// The head's committed wait on one deployment: its opening gate, then its limiter.
type GatedAcquire = dyn Future<Output = (OpeningPermit, Result<Reservation, Error>)> + Send;

/// A cost reserved on one deployment of a [`Pool`]: which one it is for, and the
/// [`Reservation`] on its limiter (settled, kept or refunded the same way). Ending it lets the
/// pool's waiting head re-route.
#[must_use = "dropping a reservation at once refunds it"]
pub struct PoolReservation {
    reservation: Option<Reservation>,
    /// Its part of the deployment's opening burst, spent once the request is sent (given back
    /// if it is cancelled).
    opening: Option<OpeningPermit>,
    index: usize,
    /// Who it is for, if a tenant.
    tenant: Option<Tenant>,
    pool: Pool,
}

impl PoolReservation {
    /// The tenant it was acquired for ([`Pool::acquire_for`]), if any.
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// The deployment this reservation is for: send the request there.
    pub fn deployment(&self) -> &Deployment {
        &self.pool.shared.deployments[self.index]
    }

    /// The deployment's place in the pool's order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// What was reserved.
    pub fn cost(&self) -> Cost {
        self.inner().cost()
    }

    fn inner(&self) -> &Reservation {
        self.reservation.as_ref().expect("held until it ends")
    }

    /// See [`Reservation::mark_sent`].
    pub fn mark_sent(&mut self) {
        self.opening_spent();
        if let Some(reservation) = &mut self.reservation {
            reservation.mark_sent();
        }
    }

    fn opening_spent(&mut self) {
        if let Some(opening) = self.opening.take() {
            opening.spent();
        }
    }

    /// See [`Reservation::settle`].
    pub fn settle(mut self, usage: Usage) {
        self.opening_spent();
        if let Some(reservation) = self.reservation.take() {
            reservation.settle(usage);
        }
    }

    /// See [`Reservation::keep`].
    pub fn keep(mut self) {
        self.opening_spent();
        if let Some(reservation) = self.reservation.take() {
            reservation.keep();
        }
    }

    /// See [`Reservation::cancel`].
    pub fn cancel(mut self) {
        if let Some(reservation) = self.reservation.take() {
            reservation.cancel();
        }
    }

    /// The limiter's reservation, for a call that settles it with its attempt; the pool hears
    /// of the end through [`Pool::changed`] from the caller.
    pub(crate) fn into_parts(mut self) -> (Reservation, OpeningPermit, usize, Pool) {
        let reservation = self.reservation.take().expect("held until it ends");
        let opening = self.opening.take().expect("held until it ends");
        (reservation, opening, self.index, self.pool.clone())
    }
}

impl Drop for PoolReservation {
    fn drop(&mut self) {
        drop(self.reservation.take());
        self.pool.changed();
    }
}

impl fmt::Debug for PoolReservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolReservation")
            .field("pool", &self.pool.shared.name)
            .field("deployment", &self.deployment().name())
            .field("tenant", &self.tenant)
            .field("reservation", &self.reservation)
            .finish()
    }
}
