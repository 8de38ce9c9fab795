//! One rate-limited call on a deployment pool: what `Call` is for one family,
//! with each attempt routed to the deployment that admits it soonest.
//!
//! What each failure does is on [`PoolCall`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;

use super::retrying::{too_long, Retrying};
use super::sizing::Sizing;
use super::stream::{RateLimitedStream, StreamItem};
use super::{carry_out, Attempt, Decision, Next};
use crate::answers::classify::{Classify, Verdict};
use crate::answers::http::RateLimitHeaders;
use crate::answers::retry::Action;
use crate::answers::usage::ReportUsage;
use crate::limiter::lanes::Priority;
use crate::model::output::MaxOutput;
use crate::model::tokens::Encoding;
use crate::pool::{Deployment, Pool};
use crate::registry::Registry;
use crate::units::cost::Cost;
use crate::units::error::Error;
use crate::units::tenant::Tenant;

/// One call on a deployment [`Pool`]: its cost, its retry state and where its attempts went.
///
/// Each attempt is admitted on one deployment and settles there (its limiter, breaker,
/// budgets, stats and header feedback); what fails on a deployment stays with it:
///
/// - a 429 holds that deployment only, and the retry goes to whichever admits soonest now;
/// - `insufficient_quota` or a spend cap skips that deployment for the pool's cool-down, and
///   the call moves on at once without spending its retry budget: it is never retried there;
/// - transient failures (5xx, 529, timeouts) back off and retry as a single family's do, and
///   count toward that deployment's breaker: once it opens the pool routes around it;
/// - a retry-after over `RATE_LIMITED_MAX_RETRY_AFTER` holds that deployment for as long, and
///   fails the call only when no other deployment could take it within the maximum.
///
/// `#[rate_limited(pool = "gpt-4o", deployment = deployment)]` expands to one of these, with
/// each attempt's deployment bound in the body; by hand, [`run`](PoolCall::run) is the loop:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::pool::{DeploymentConfig, PoolCall, PoolConfig};
/// use ratelimited::testing::{MockLimits, MockProvider, MockRequest};
/// use ratelimited::{CallError, Quota, Registry};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), CallError> {
/// let east = MockProvider::new(MockLimits::new(600, 100_000));
/// let west = MockProvider::new(MockLimits::new(300, 50_000));
/// let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
///     PoolConfig::new("gpt-4o")
///         .deployment(DeploymentConfig::new("east", "azure/gpt-4o").quota(Quota::default().rpm(600).tpm(100_000)))
///         .deployment(DeploymentConfig::new("west", "azure/gpt-4o").quota(Quota::default().rpm(300).tpm(50_000))),
/// );
/// let mut call = PoolCall::in_registry(&registry, "gpt-4o", None)?;
/// call.set_input_tokens(1_000);
/// call.set_max_tokens(200);
/// let answer = call
///     .run(|deployment| {
///         let provider = if deployment.name() == "east" { east.clone() } else { west.clone() };
///         let request = MockRequest::new("gpt-4o", 1_000).max_tokens(200);
///         async move { provider.chat(&request).await.map_err(CallError::from) }
///     })
///     .await?;
/// assert_eq!(call.attempts(), 1);
/// # drop(answer); Ok(()) }
/// ```
pub struct PoolCall {
    pool: Pool,
    /// The retry budget, clock and backoff; an attempt that moved off an out-of-quota
    /// deployment spends no retry.
    retry: Retrying,
    /// The estimate and output budget, priced on each deployment.
    sizing: Sizing,
    priority: Priority,
    /// Who the call is for, when many users share the pool (turns, caps, budgets, stats).
    tenant: Option<Tenant>,
}

/// An attempt admitted on one deployment of a pool: send it there.
#[must_use = "pass the attempt to `PoolCall::finish`"]
pub struct PoolAttempt {
    attempt: Attempt,
    deployment: Deployment,
    index: usize,
}

impl PoolAttempt {
    /// The deployment this attempt is for.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }
}

impl fmt::Debug for PoolAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolAttempt")
            .field("deployment", &self.deployment.name())
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// What `sizing` reserves on `deployment`'s family.
fn cost_on(sizing: Sizing, deployment: &Deployment) -> Cost {
    sizing.cost(deployment.profile(), &deployment.feedback)
}

impl PoolCall {
    /// A call on the pool `pool` of the [current](Registry::current) registry.
    ///
    /// # Errors
    /// See [`Registry::pool`].
    pub fn new(pool: &str, retries: Option<u32>) -> Result<PoolCall, Error> {
        PoolCall::in_registry(&Registry::current(), pool, retries)
    }

    /// Like [`PoolCall::new`] with an explicit registry.
    ///
    /// # Errors
    /// See [`Registry::pool`].
    pub fn in_registry(
        registry: &Registry,
        pool: &str,
        retries: Option<u32>,
    ) -> Result<PoolCall, Error> {
        let settings = registry.settings()?;
        Ok(PoolCall {
            pool: registry.pool(pool)?,
            retry: Retrying::new(&settings, retries),
            sizing: Sizing::default(),
            priority: Priority::Normal,
            tenant: None,
        })
    }

    /// Adds the prompt estimate `estimate` computes from the arguments; `text_len` is their
    /// text length in bytes (as a single family's `Call::estimate`).
    ///
    /// The deployments of a pool usually serve one model; when their tokenizers differ, the
    /// prompt is counted with each and the largest count is reserved on every deployment, so
    /// the estimate is never low wherever the call goes.
    pub fn estimate(&mut self, text_len: usize, estimate: impl Fn(Encoding) -> u64) {
        let mut encodings: Vec<Encoding> = Vec::new();
        for deployment in self.pool.deployments() {
            let encoding = deployment.profile().encoding;
            if !encodings.contains(&encoding) {
                encodings.push(encoding);
            }
        }
        let tokens = encodings.into_iter().map(estimate).max().unwrap_or(0);
        self.sizing.add_estimate(tokens, text_len);
    }

    /// Records that `tokens` of the prompt estimate are images (as a single family's
    /// `Call::estimate_images`).
    pub fn estimate_images(&mut self, tokens: u64) {
        self.sizing.add_images(tokens);
    }

    /// Replaces the prompt estimate, in tokens (`tokens = ...`).
    pub fn set_input_tokens(&mut self, tokens: u64) {
        self.sizing.set_input_tokens(tokens);
    }

    /// Takes `max_tokens` and `n` from an argument that knows them (the first one wins).
    pub fn observe_budget(&mut self, budget: Option<MaxOutput>) {
        self.sizing.observe_budget(budget);
    }

    /// The output budget per choice (otherwise each deployment's model default).
    pub fn set_max_tokens(&mut self, max_tokens: u64) {
        self.sizing.set_max_tokens(max_tokens);
    }

    /// The number of choices.
    pub fn set_n(&mut self, n: u32) {
        self.sizing.set_n(n);
    }

    /// The lane every attempt waits in, in the pool's queue and on the deployment.
    pub fn set_priority(&mut self, priority: Priority) {
        self.priority = priority;
    }

    /// Makes the call for `tenant`, as a single family's `Call::set_tenant` does: in the
    /// pool's queue it takes turns with the other tenants of its lane, routing counts its cap
    /// on each deployment (see [`Pool::acquire_for`]), and each attempt is admitted on its
    /// deployment under the tenant's cap there, held and settled on the tenant's budget of
    /// that deployment's family, and counted in that family's stats and events as the
    /// tenant's.
    pub fn set_tenant(&mut self, tenant: impl Into<Tenant>) {
        self.tenant = Some(tenant.into());
    }

    /// How many times the body has run.
    pub fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// What an attempt reserves on `deployment`: the prompt estimate (raised by what its
    /// server has been seen to charge beyond it) plus `n × max_tokens`.
    pub fn cost_on(&self, deployment: &Deployment) -> Cost {
        cost_on(self.sizing, deployment)
    }

    /// Waits for the deployment that admits this call soonest and reserves it there; the
    /// deployment's breaker and budgets admit it too, or it is routed elsewhere.
    ///
    /// # Errors
    /// [`Error::PoolRefused`] when no deployment can take it, naming each with its reason.
    pub async fn acquire(&mut self) -> Result<PoolAttempt, Error> {
        let sizing = self.sizing;
        let cost_of = move |d: &Deployment| cost_on(sizing, d);
        let mut refused = Vec::new();
        let asked = Instant::now();
        loop {
            let routed = self
                .pool
                .acquire_routed(
                    &cost_of,
                    self.priority,
                    self.tenant.as_ref(),
                    &refused,
                    true,
                )
                .await?;
            let (mut reservation, opening, index, pool) = routed.into_parts();
            let deployment = pool.deployments()[index].clone();
            let cost = reservation.cost();
            deployment.feedback.refresh_shared(deployment.limiter());
            let pending = deployment
                .state
                .before_send_held(&cost, self.tenant.as_ref())
                .await;
            let pending = match pending {
                Ok(pending) => pending,
                Err(error) => {
                    // A budget spent (the tenant's too), or a breaker that opened while this
                    // call waited.
                    reservation.cancel();
                    pool.changed();
                    refused.push((index, error));
                    continue;
                }
            };
            let in_flight = pending.admitted_from_pool(cost, deployment.limiter(), asked.elapsed());
            reservation.mark_sent();
            opening.spent();
            self.retry.attempt_started();
            let profile = deployment.profile_arc().clone();
            let charged_prompt = sizing.charged_prompt(deployment.profile());
            return Ok(PoolAttempt {
                attempt: Attempt::new(reservation, in_flight, profile, charged_prompt),
                deployment,
                index,
            });
        }
    }

    /// Settles the attempt on its deployment and decides what comes next (see [`PoolCall`]
    /// for what each failure does).
    ///
    /// # Errors
    /// [`Error::RetryAfterTooLong`] when the server asks one deployment to wait longer than
    /// `RATE_LIMITED_MAX_RETRY_AFTER` and no other could take the call within it;
    /// [`Error::RetriesExhausted`] when the retry budget or the total-time cap is spent.
    pub fn finish<T, E>(
        &mut self,
        attempt: PoolAttempt,
        result: &Result<T, E>,
    ) -> impl Future<Output = Result<Next, Error>> + Send + '_
    where
        T: ReportUsage,
        E: Classify + fmt::Debug,
    {
        let PoolAttempt {
            attempt,
            deployment,
            index,
        } = attempt;
        let decision = match result {
            Ok(value) => {
                let (mark, shared) = attempt.succeeded(value.usage());
                if let Some(headers) = value.rate_limit_headers() {
                    deployment.feedback.apply_headers(
                        deployment.limiter(),
                        &headers,
                        mark.as_ref(),
                        shared.as_ref(),
                    );
                }
                Decision::Now(Ok(Next::Return))
            }
            Err(error) => self.decide_error(attempt, index, error),
        };
        self.answered(&deployment);
        carry_out(decision)
    }

    /// Hands a streaming attempt to the stream the body returned, as
    /// a single family's `Call::start_stream` does: the reservation,
    /// in-flight slot and budget hold stay on the attempt's deployment until the stream ends
    /// (settled there from the chunks' usage) or is dropped (kept), and the pool hears of it
    /// then. The deployment's breaker hears of the answer now, and its limiter of the
    /// rate-limit `headers` the response came with.
    pub fn start_stream<S>(
        &self,
        attempt: PoolAttempt,
        stream: S,
        headers: Option<RateLimitHeaders>,
    ) -> RateLimitedStream<S>
    where
        S: Stream,
        S::Item: StreamItem,
    {
        let PoolAttempt {
            attempt,
            deployment,
            ..
        } = attempt;
        if let Some(headers) = headers {
            let (mark, shared) = attempt.marks();
            deployment.feedback.apply_headers(
                deployment.limiter(),
                &headers,
                mark.as_ref(),
                shared.as_ref(),
            );
        }
        deployment.feedback.server_answered();
        let attempt = attempt.streaming().telling_on_end(self.pool.clone());
        RateLimitedStream::new(stream, attempt)
    }

    /// Decides after a streaming attempt whose body failed before returning a stream (a 429
    /// or 5xx on the initial response): exactly as [`PoolCall::finish`] does for an `Err`.
    ///
    /// # Errors
    /// As [`PoolCall::finish`].
    pub fn finish_stream_error<E>(
        &mut self,
        attempt: PoolAttempt,
        error: &E,
    ) -> impl Future<Output = Result<Next, Error>> + Send + '_
    where
        E: Classify + fmt::Debug,
    {
        let PoolAttempt {
            attempt,
            deployment,
            index,
        } = attempt;
        let decision = self.decide_error(attempt, index, error);
        self.answered(&deployment);
        carry_out(decision)
    }

    /// The attempt on `deployment` has its answer and has settled: an opening burst there may
    /// go on, and the pool's waiting head may re-route.
    fn answered(&self, deployment: &Deployment) {
        deployment.feedback.server_answered();
        self.pool.changed();
    }

    fn decide_error<E>(&mut self, attempt: Attempt, index: usize, error: &E) -> Decision
    where
        E: Classify + fmt::Debug,
    {
        let verdict = error.classify();
        let reserved = attempt.reserved();
        if let Verdict::QuotaExhausted { message } = &verdict {
            attempt.failed(
                &verdict,
                &Action::Return {
                    hold_family_for: None,
                },
            );
            self.pool.skip_index(index, message);
            self.retry.spend_no_retry();
            return Decision::Now(Ok(Next::Retry));
        }
        let action = self.retry.next_action(&verdict);
        attempt.failed(&verdict, &action);
        match action {
            Action::Return { hold_family_for } => {
                if let Some(wait) = hold_family_for {
                    self.pool.hold_index(index, wait);
                }
                Decision::Now(Ok(Next::Return))
            }
            Action::RetryAfterTooLong { asked, max } => {
                // Too long for this deployment; another may take the call within the maximum.
                self.pool.hold_index(index, asked);
                if self.another_within(index, reserved, max) {
                    Decision::Now(Ok(Next::Retry))
                } else {
                    Decision::Now(Err(too_long(asked, max)))
                }
            }
            Action::RetriesExhausted => Decision::Now(Err(self.retry.exhausted(error))),
            Action::Retry { wait, hold_family } => {
                if hold_family {
                    // That deployment waits out the server's hint; the retry goes wherever
                    // admits soonest now.
                    self.pool.hold_index(index, wait);
                    Decision::Now(Ok(Next::Retry))
                } else {
                    Decision::SleepThenRetry(wait)
                }
            }
        }
    }

    /// Whether a deployment other than `index` could admit `cost` within `max`.
    fn another_within(&self, index: usize, cost: Cost, max: Duration) -> bool {
        let now = Instant::now();
        self.pool
            .deployments()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .any(|(_, d)| {
                d.limiter()
                    .forecast(&cost)
                    .wait_from(now)
                    .is_some_and(|w| w <= max)
            })
    }

    /// Runs the call: acquires, runs `body` with the deployment chosen for the attempt,
    /// settles, and retries as [`finish`](PoolCall::finish) decides.
    ///
    /// # Errors
    /// The body's own error, or the library's ([`Error::PoolRefused`], retries spent, ...)
    /// through `E: From<Error>`.
    pub async fn run<T, E, F, Fut>(&mut self, mut body: F) -> Result<T, E>
    where
        F: FnMut(Deployment) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: ReportUsage,
        E: Classify + fmt::Debug + From<Error>,
    {
        loop {
            let attempt = self.acquire().await?;
            let result = body(attempt.deployment().clone()).await;
            match self.finish(attempt, &result).await? {
                Next::Return => return result,
                Next::Retry => continue,
            }
        }
    }
}

impl fmt::Debug for PoolCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCall")
            .field("pool", &self.pool.name())
            .field("attempts", &self.retry.attempts())
            .finish_non_exhaustive()
    }
}
