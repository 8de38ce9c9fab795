//! One rate-limited call, from estimate to settle: what `#[rate_limited]` expands to.
//!
//! The attribute generates only the glue (argument estimation, the attempt loop); this is the
//! orchestration: the model's profile from the registry, the reservation, the settle, and the
//! retry decision, which itself is the pure policy in `retry`.
//!
//! Bottom up: `error` (the ready-made error type for annotated functions), `retrying` (a
//! call's retry budget, clock and backoff, shared by both drivers), `attempt` (what an
//! admitted attempt holds and how it settles), `stream` (a streamed response that holds its
//! attempt until it ends), `pool` (one call on a deployment pool, [`pool::PoolCall`]), and here
//! the driver, [`Call`].

pub mod error;

mod retrying;

mod sizing;

pub mod attempt;

pub mod stream;

pub mod pool;

pub use attempt::Attempt;
use stream::{RateLimitedStream, StreamItem};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;

use crate::answers::classify::{Classify, Verdict};
use crate::answers::retry::Action;
use crate::answers::usage::ReportUsage;
use crate::config::ModelProfile;
use crate::family::feedback::FamilyFeedback;
use crate::family::state::FamilyState;
use crate::limiter::lanes::Priority;
use crate::limiter::Limiter;
use crate::model::output::MaxOutput;
use crate::model::tokens::Encoding;
use crate::registry::Registry;
use crate::units::cost::Cost;
use crate::units::error::Error;
use crate::units::tenant::Tenant;
use retrying::{too_long, Retrying};
use sizing::Sizing;

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Return the attempt's result to the caller.
    Return,
    /// Run the call again (after acquiring again).
    Retry,
}

/// One call of a rate-limited function: its limiter, its estimate and its retry state.
pub struct Call {
    limiter: Limiter,
    profile: Arc<ModelProfile>,
    feedback: Arc<FamilyFeedback>,
    family_state: Arc<FamilyState>,
    retry: Retrying,
    /// The estimate and output budget each attempt reserves.
    sizing: Sizing,
    priority: Priority,
    /// Who the call is for, when many users share the family (fair share, caps, budgets).
    tenant: Option<Tenant>,
}

impl Call {
    /// Looks up the limiter of `model` in the [current](Registry::current) registry.
    ///
    /// # Errors
    /// Configuration errors and unknown models (see [`Registry::limiter_with`]).
    pub fn new(
        model: &str,
        provider: Option<&str>,
        tier: Option<&str>,
        retries: Option<u32>,
    ) -> Result<Call, Error> {
        Call::in_registry(&Registry::current(), model, provider, tier, retries)
    }

    /// Like [`Call::new`] with an explicit registry.
    ///
    /// # Errors
    /// Configuration errors and unknown models (see [`Registry::limiter_with`]).
    pub fn in_registry(
        registry: &Registry,
        model: &str,
        provider: Option<&str>,
        tier: Option<&str>,
        retries: Option<u32>,
    ) -> Result<Call, Error> {
        let settings = registry.settings()?;
        let found = registry.limiter_with(model, provider, tier)?;
        Ok(Call {
            limiter: found.limiter,
            profile: found.profile,
            feedback: found.feedback,
            family_state: found.state,
            retry: Retrying::new(&settings, retries),
            sizing: Sizing::default(),
            priority: Priority::Normal,
            tenant: None,
        })
    }

    /// Adds the prompt estimate `estimate` computes; `text_len` is the arguments' text length
    /// in bytes.
    ///
    /// The count runs here, on the calling thread: `block_in_place` would move it off the
    /// executor on some runtime shapes but panics on others (a `LocalSet`, a current-thread
    /// runtime) that cannot be told apart beforehand, and a library must not panic on a runtime
    /// shape tokio allows. The costly part, building the tokenizer (0.2-0.3 s, once per
    /// process), is kept off the executor: the registry starts it on a background thread when a
    /// family is first used. Only a call that arrives before that has finished builds it
    /// inline. For prompts of many hundred
    /// KiB, count with [`count_tokens_async`](crate::model::tokens::count_tokens_async) and pass
    /// `tokens = ...`.
    pub fn estimate(&mut self, text_len: usize, estimate: impl FnOnce(Encoding) -> u64) {
        let encoding = self.profile.encoding;
        if text_len > 0 && !encoding.is_warm() {
            tracing::debug!(
                %encoding,
                "building the tokenizer inline: this call came before its background build \
                 finished"
            );
        }
        self.sizing.add_estimate(estimate(encoding), text_len);
    }

    /// Records that `tokens` of the prompt estimate are images, counted by their provider's
    /// formula ([`EstimateTokens::image_tokens`](crate::EstimateTokens::image_tokens)): a
    /// character-based charge adds them to its count of the text, as it never sees their base64.
    pub fn estimate_images(&mut self, tokens: u64) {
        self.sizing.add_images(tokens);
    }

    /// Replaces the prompt estimate (`tokens = ...`).
    pub fn set_input_tokens(&mut self, tokens: u64) {
        self.sizing.set_input_tokens(tokens);
    }

    /// Takes `max_tokens` and `n` from an argument that knows them (the first one wins).
    pub fn observe_budget(&mut self, budget: Option<MaxOutput>) {
        self.sizing.observe_budget(budget);
    }

    /// Sets the output budget per choice (`max_tokens = ...`).
    pub fn set_max_tokens(&mut self, max_tokens: u64) {
        self.sizing.set_max_tokens(max_tokens);
    }

    /// Sets the number of choices (`n = ...`).
    pub fn set_n(&mut self, n: u32) {
        self.sizing.set_n(n);
    }

    /// What each attempt reserves: the prompt estimate plus `n × max_tokens`.
    ///
    /// The prompt estimate is the larger of the token count and the character-based estimate
    /// the provider's own limiter charges (OpenAI, Azure: see
    /// [`Provider::charged_prompt_estimate`](crate::config::Provider::charged_prompt_estimate)),
    /// raised by what the family's server has been seen to charge beyond it.
    pub fn cost(&self) -> Cost {
        self.sizing.cost(&self.profile, &self.feedback)
    }

    /// Sets the lane every attempt of this call waits in (`priority = ...`).
    pub fn set_priority(&mut self, priority: Priority) {
        self.priority = priority;
    }

    /// Makes the call for `tenant`: within its lane it takes turns with the family's other
    /// tenants (see [`Limiter::acquire_for`](crate::Limiter::acquire_for)), under the
    /// tenant's caps and budget, and the stats and events count it as the tenant's.
    pub fn set_tenant(&mut self, tenant: impl Into<Tenant>) {
        self.tenant = Some(tenant.into());
    }

    /// How many times the body has run.
    pub fn attempts(&self) -> u32 {
        self.retry.attempts()
    }

    /// Waits for the limiter and reserves this call's cost.
    ///
    /// # Errors
    /// [`Error::RequestTooLarge`] at once if the cost can never fit; [`Error::CircuitOpen`]
    /// and [`Error::BudgetExhausted`] at once, before waiting, from the family's breaker and
    /// budgets.
    pub async fn acquire(&mut self) -> Result<Attempt, Error> {
        let cost = self.cost();
        let pending = self
            .family_state
            .before_send_held(&cost, self.tenant.as_ref())
            .await?;
        self.feedback.refresh_shared(&self.limiter);
        // Given back if the limiter refuses the call (too large: nothing is sent).
        let opening = self.feedback.admit_opening(&cost).await;
        let acquired = match &self.tenant {
            Some(tenant) => self.limiter.acquire_for(cost, self.priority, tenant).await,
            None => self.limiter.acquire_with(cost, self.priority).await,
        };
        let mut reservation = match acquired {
            Ok(reservation) => reservation,
            Err(error) => return Err(pending.refuse(error)),
        };
        opening.spent();
        let in_flight = pending.admitted(cost, &self.limiter);
        // The body sends the request next; if it is dropped midway the provider may have
        // counted it, so from here on an unsettled reservation keeps its charge.
        reservation.mark_sent();
        self.retry.attempt_started();
        Ok(Attempt::new(
            reservation,
            in_flight,
            Arc::clone(&self.profile),
            self.sizing.charged_prompt(&self.profile),
        ))
    }

    /// Settles the attempt and decides what comes next.
    ///
    /// - `Ok`: settle to the usage the value reports (or keep the estimate), tighten the
    ///   limiter to the server's own count if the value carries rate-limit headers, and return.
    /// - Rate-limited: the server rejected the request, so its tokens go back (the request
    ///   still counts); hold the family's limiter for the server's retry-after (or a backoff),
    ///   so every caller waits instead of piling on, then retry.
    /// - Transient (5xx, 408, 529, timeouts): keep the charge (the server may have counted
    ///   it), back off, then retry.
    /// - Quota exhausted, too large, fatal: return the error at once.
    ///
    /// The decision is made before the returned future first polls, so the future borrows only
    /// the call, never `result` (an annotated function stays `Send` whatever `T` and `E` are).
    ///
    /// # Errors
    /// [`Error::RetryAfterTooLong`] when the server asks to wait longer than
    /// `RATE_LIMITED_MAX_RETRY_AFTER`; [`Error::RetriesExhausted`] (with the last error as its
    /// source) when the retry budget or [`MAX_RETRY_TIME`](crate::answers::retry::MAX_RETRY_TIME)
    /// is spent.
    pub fn finish<T, E>(
        &mut self,
        attempt: Attempt,
        result: &Result<T, E>,
    ) -> impl std::future::Future<Output = Result<Next, Error>> + Send + '_
    where
        T: ReportUsage,
        E: Classify + fmt::Debug,
    {
        carry_out(self.decide(attempt, result))
    }

    /// Hands a streaming attempt to the stream the body returned: its reservation, in-flight
    /// slot and budget hold are held until the stream ends (settled from the chunks' usage, as
    /// a whole response with that usage is) or is dropped (kept). The breaker hears of the
    /// answer now, and the limiter of the rate-limit `headers` the response came with (a body
    /// that returns the stream in [`WithHeaders`](crate::answers::usage::WithHeaders)), read
    /// against where the buckets stood after the charge. See [`RateLimitedStream`].
    pub fn start_stream<S>(
        &self,
        attempt: Attempt,
        stream: S,
        headers: Option<crate::answers::http::RateLimitHeaders>,
    ) -> RateLimitedStream<S>
    where
        S: Stream,
        S::Item: StreamItem,
    {
        if let Some(headers) = headers {
            let (mark, shared) = attempt.marks();
            self.feedback
                .apply_headers(&self.limiter, &headers, mark.as_ref(), shared.as_ref());
        }
        self.feedback.server_answered();
        RateLimitedStream::new(stream, attempt.streaming())
    }

    /// Decides after a streaming attempt whose body failed before returning a stream (a 429
    /// or 5xx on the initial response): exactly as [`Call::finish`] does for an `Err`.
    ///
    /// # Errors
    /// As [`Call::finish`].
    pub fn finish_stream_error<E>(
        &mut self,
        attempt: Attempt,
        error: &E,
    ) -> impl std::future::Future<Output = Result<Next, Error>> + Send + '_
    where
        E: Classify + fmt::Debug,
    {
        let decision = self.decide_error(attempt, error);
        self.feedback.server_answered();
        carry_out(decision)
    }

    fn decide<T, E>(&mut self, attempt: Attempt, result: &Result<T, E>) -> Decision
    where
        T: ReportUsage,
        E: Classify + fmt::Debug,
    {
        // The opening burst ends only after the answer's usage and headers are in the
        // limiter: the callers it releases must see the server's count, not the estimate.
        let decision = match result {
            Ok(value) => {
                self.settle_success(attempt, value);
                Decision::Now(Ok(Next::Return))
            }
            Err(error) => self.decide_error(attempt, error),
        };
        self.feedback.server_answered();
        decision
    }

    fn decide_error<E>(&mut self, attempt: Attempt, error: &E) -> Decision
    where
        E: Classify + fmt::Debug,
    {
        let verdict = error.classify();
        if let Verdict::RateLimited {
            retry_after: Some(wait),
        } = verdict
        {
            // How long the server asks to wait tells how it counts (see the feedback).
            let sent = attempt.marks().0.map(|mark| self.limiter.instant_of(&mark));
            self.feedback
                .refused(&self.limiter, &attempt.reserved(), sent, wait);
        }
        let action = self.retry.next_action(&verdict);
        attempt.failed(&verdict, &action);
        match action {
            Action::Return { hold_family_for } => {
                if let Some(wait) = hold_family_for {
                    // No retry was on offer: the provider's own error goes back, after making
                    // the family's other callers wait out the server's hint.
                    self.limiter.hold_for(wait);
                }
                Decision::Now(Ok(Next::Return))
            }
            Action::RetryAfterTooLong { asked, max } => Decision::Now(Err(too_long(asked, max))),
            Action::RetriesExhausted => Decision::Now(Err(self.retry.exhausted(error))),
            Action::Retry { wait, hold_family } => {
                tracing::debug!(
                    family = %self.profile.family,
                    attempt = self.retry.attempts(),
                    ?wait,
                    rate_limited = hold_family,
                    "retrying"
                );
                if hold_family {
                    // Everyone on this family waits out the server's hint; our next acquire too.
                    self.limiter.hold_for(wait);
                    Decision::Now(Ok(Next::Retry))
                } else {
                    Decision::SleepThenRetry(wait)
                }
            }
        }
    }

    /// Settles a successful attempt to the usage its value reports (or keeps the estimate) and
    /// applies the rate-limit headers it carries.
    fn settle_success<T: ReportUsage>(&self, attempt: Attempt, value: &T) {
        let (mark, shared) = attempt.succeeded(value.usage());
        if let Some(headers) = value.rate_limit_headers() {
            self.feedback
                .apply_headers(&self.limiter, &headers, mark.as_ref(), shared.as_ref());
        }
    }
}

/// What `Call::finish` decided, before any waiting.
enum Decision {
    Now(Result<Next, Error>),
    SleepThenRetry(Duration),
}

/// Waits out a decision's backoff, if it has one.
async fn carry_out(decision: Decision) -> Result<Next, Error> {
    match decision {
        Decision::Now(next) => next,
        Decision::SleepThenRetry(wait) => {
            tokio::time::sleep(wait).await;
            Ok(Next::Retry)
        }
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("family", &self.profile.family)
            .field("cost", &self.cost())
            .field("attempts", &self.retry.attempts())
            .finish_non_exhaustive()
    }
}
