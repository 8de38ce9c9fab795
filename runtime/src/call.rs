//! One rate-limited call, from estimate to settle: what `#[rate_limited]` expands to.
//!
//! The attribute generates only the glue (argument estimation, the attempt loop); every
//! decision lives here, so it is tested as ordinary code.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::exponential::ExponentialBackoff;
use tokio::time::Instant;

use crate::classify::{Classify, Verdict};
use crate::config::{Resolved, Settings};
use crate::error::Error;
use crate::family::Provider;
use crate::headers::RateLimitHeaders;
use crate::limiter::{Limiter, Reservation};
use crate::quota::{Cost, Dimension, Usage};
use crate::registry::Registry;
use crate::tokens::{Encoding, ASYNC_COUNT_THRESHOLD};
use crate::usage::ReportUsage;

/// Output tokens reserved per choice when neither the attribute nor an argument says
/// `max_tokens` (embedding models produce none). The settle refunds what is not used.
pub const DEFAULT_MAX_TOKENS: u64 = 1_024;

/// The longest a call keeps retrying, all waits included, before it gives up.
pub const MAX_RETRY_TIME: Duration = Duration::from_secs(600);

/// What an argument may say about the output a request can produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// `max_tokens` / `max_completion_tokens` / `max_output_tokens`.
    pub max_tokens: Option<u64>,
    /// How many choices (`n`).
    pub n: Option<u32>,
}

/// A request type that knows its output budget, so the reservation covers
/// `n × max_tokens` without the attribute repeating it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say how many output tokens it may produce",
    note = "implement `ratelimited::OutputBudget` for it, or pass `max_tokens = ...` and `n = ...` \
            to `#[rate_limited]`"
)]
pub trait OutputBudget {
    /// The request's output budget, if it sets one.
    fn output_budget(&self) -> Budget;
}

impl<T: OutputBudget + ?Sized> OutputBudget for &T {
    fn output_budget(&self) -> Budget {
        (**self).output_budget()
    }
}

impl<T: OutputBudget + ?Sized> OutputBudget for &mut T {
    fn output_budget(&self) -> Budget {
        (**self).output_budget()
    }
}

impl<T: OutputBudget + ?Sized> OutputBudget for Box<T> {
    fn output_budget(&self) -> Budget {
        (**self).output_budget()
    }
}

impl OutputBudget for serde_json::Value {
    /// Reads an OpenAI-style request body: `max_completion_tokens`, `max_tokens` or
    /// `max_output_tokens` (the first present), and `n`.
    fn output_budget(&self) -> Budget {
        let max_tokens = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
            .iter()
            .find_map(|key| self.get(key).and_then(serde_json::Value::as_u64));
        let n = self
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        Budget { max_tokens, n }
    }
}

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
    encoding: Encoding,
    resolved: Arc<Resolved>,
    /// Output reserved per choice when nothing says `max_tokens`.
    default_max_tokens: u64,
    /// Whether the provider gives unused output back to its buckets (see `settle_usage`).
    refunds_output: bool,
    settings: Settings,
    max_retries: u32,
    input_tokens: u64,
    max_tokens: Option<u64>,
    n: Option<u32>,
    attempts: u32,
    started: Instant,
    /// Built on the first retry: most calls never need it.
    backoff: Option<ExponentialBackoff<TokioClock>>,
}

/// An admitted attempt: holds the reservation while the body runs.
#[must_use = "pass the attempt to `Call::finish`"]
pub struct Attempt {
    reservation: Reservation,
}

impl Call {
    /// Looks up the limiter of `model` in the [current](Registry::current) registry.
    ///
    /// # Errors
    /// Configuration errors and unknown models (see [`Registry::limiter`]).
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
    /// Configuration errors and unknown models (see [`Registry::limiter`]).
    pub fn in_registry(
        registry: &Registry,
        model: &str,
        provider: Option<&str>,
        tier: Option<&str>,
        retries: Option<u32>,
    ) -> Result<Call, Error> {
        let settings = registry.settings()?;
        let found = registry.limiter(model, provider, tier)?;
        Ok(Call {
            refunds_output: refunds_unused_output(found.resolved.family.provider),
            default_max_tokens: if model.contains("embedding") {
                0
            } else {
                DEFAULT_MAX_TOKENS
            },
            limiter: found.limiter,
            encoding: found.encoding,
            resolved: found.resolved,
            max_retries: retries.unwrap_or(settings.max_retries),
            settings,
            input_tokens: 0,
            max_tokens: None,
            n: None,
            attempts: 0,
            started: Instant::now(),
            backoff: None,
        })
    }

    /// The tokenizer for this model's prompts.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The shared limiter of this model's family.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Adds the prompt estimate `estimate` computes. `text_len` is the arguments' text length
    /// in bytes: from [`ASYNC_COUNT_THRESHOLD`] up, or before the tokenizer is built, the
    /// count runs via `block_in_place` on a multi-thread runtime so it never stalls other
    /// tasks (a current-thread runtime has no other thread to hand it to: it runs inline).
    pub fn estimate(&mut self, text_len: usize, estimate: impl FnOnce(Encoding) -> u64) {
        let encoding = self.encoding;
        let heavy = text_len >= ASYNC_COUNT_THRESHOLD || (text_len > 0 && !encoding.is_warm());
        let on_multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let tokens = if heavy && on_multi_thread {
            tokio::task::block_in_place(|| estimate(encoding))
        } else {
            estimate(encoding)
        };
        self.input_tokens = self.input_tokens.saturating_add(tokens);
    }

    /// Replaces the prompt estimate (`tokens = ...`).
    pub fn set_input_tokens(&mut self, tokens: u64) {
        self.input_tokens = tokens;
    }

    /// Takes `max_tokens` and `n` from an argument that knows them (the first one wins).
    pub fn observe_budget(&mut self, budget: Option<Budget>) {
        if let Some(budget) = budget {
            self.max_tokens = self.max_tokens.or(budget.max_tokens);
            self.n = self.n.or(budget.n);
        }
    }

    /// Sets the output budget per choice (`max_tokens = ...`).
    pub fn set_max_tokens(&mut self, max_tokens: u64) {
        self.max_tokens = Some(max_tokens);
    }

    /// Sets the number of choices (`n = ...`).
    pub fn set_n(&mut self, n: u32) {
        self.n = Some(n);
    }

    /// What each attempt reserves: the prompt estimate plus `n × max_tokens`.
    pub fn cost(&self) -> Cost {
        let max_tokens = self.max_tokens.unwrap_or(self.default_max_tokens);
        let n = u64::from(self.n.unwrap_or(1).max(1));
        Cost::request(self.input_tokens, n.saturating_mul(max_tokens))
    }

    /// How many times the body has run.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Waits for the limiter and reserves this call's cost.
    ///
    /// # Errors
    /// [`Error::RequestTooLarge`] at once if the cost can never fit.
    pub async fn acquire(&mut self) -> Result<Attempt, Error> {
        let mut reservation = self.limiter.acquire(self.cost()).await?;
        // The body sends the request next; if it is dropped midway the provider may have
        // counted it, so from here on an unsettled reservation keeps its charge.
        reservation.mark_sent();
        self.attempts += 1;
        Ok(Attempt { reservation })
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
    /// `RATE_LIMITED_MAX_RETRY_AFTER`; [`Error::RetriesExhausted`] when the retry budget or
    /// [`MAX_RETRY_TIME`] is spent.
    pub fn finish<T, E>(
        &mut self,
        attempt: Attempt,
        result: &Result<T, E>,
    ) -> impl std::future::Future<Output = Result<Next, Error>> + Send + '_
    where
        T: ReportUsage,
        E: Classify + fmt::Debug,
    {
        let decision = self.decide(attempt, result);
        async move {
            match decision {
                Decision::Now(next) => next,
                Decision::SleepThenRetry(wait) => {
                    tokio::time::sleep(wait).await;
                    Ok(Next::Retry)
                }
            }
        }
    }

    fn decide<T, E>(&mut self, attempt: Attempt, result: &Result<T, E>) -> Decision
    where
        T: ReportUsage,
        E: Classify + fmt::Debug,
    {
        let error = match result {
            Ok(value) => {
                match value.usage() {
                    Some(usage) => {
                        let usage = self.settle_usage(attempt.reservation.cost(), usage);
                        attempt.reservation.settle(usage);
                    }
                    None => attempt.reservation.keep(),
                }
                if let Some(headers) = value.rate_limit_headers() {
                    self.apply_headers(&headers);
                }
                return Decision::Now(Ok(Next::Return));
            }
            Err(error) => error,
        };
        let (wait, hold) = match error.classify() {
            Verdict::RateLimited { retry_after } => {
                // Rejected: no tokens were taken, but the request counts (as OpenAI counts it).
                attempt.reservation.settle(Usage::default());
                (retry_after, true)
            }
            Verdict::Transient { retry_after } => {
                attempt.reservation.keep();
                (retry_after, false)
            }
            _ => {
                attempt.reservation.keep();
                return Decision::Now(Ok(Next::Return));
            }
        };
        if let Some(asked) = wait.filter(|w| *w > self.settings.max_retry_after) {
            return Decision::Now(Err(Error::RetryAfterTooLong {
                retry_after: asked,
                max: self.settings.max_retry_after,
            }));
        }
        if self.max_retries == 0 {
            // No retry was ever on offer: hand back the provider's own error, after making the
            // family's other callers wait out the server's hint.
            if let (true, Some(wait)) = (hold, wait) {
                self.limiter.hold_for(wait);
            }
            return Decision::Now(Ok(Next::Return));
        }
        let wait = wait.or_else(|| self.backoff.get_or_insert_with(new_backoff).next_backoff());
        let out_of_time = wait.is_none_or(|w| self.started.elapsed() + w > MAX_RETRY_TIME);
        if self.attempts > self.max_retries || out_of_time {
            return Decision::Now(Err(Error::RetriesExhausted {
                attempts: self.attempts,
                last_error: format!("{error:?}"),
            }));
        }
        let wait = wait.unwrap_or_default();
        tracing::debug!(
            family = %self.resolved.family,
            attempt = self.attempts,
            ?wait,
            rate_limited = hold,
            "retrying"
        );
        if hold {
            // Everyone on this family waits out the server's hint; our next acquire too.
            self.limiter.hold_for(wait);
            Decision::Now(Ok(Next::Retry))
        } else {
            Decision::SleepThenRetry(wait)
        }
    }

    /// Tightens the limiter to what the server says is in use, on every dimension whose limit
    /// the server reports the same as ours. It never loosens: the local state stays at least
    /// as full as the server's (a client that starts its buckets before its first request
    /// arrives would otherwise run ahead of the server's buckets). A limit that differs from
    /// the configured one is logged and ignored.
    fn apply_headers(&self, headers: &RateLimitHeaders) {
        let quota = self.limiter.quota();
        let reports = [
            (
                headers.limit_requests,
                headers.remaining_requests,
                &[Dimension::RequestsPerMinute, Dimension::RequestsPerDay][..],
            ),
            (
                headers.limit_tokens,
                headers.remaining_tokens,
                &[Dimension::TokensPerMinute, Dimension::TokensPerDay][..],
            ),
            (
                headers.limit_input_tokens,
                headers.remaining_input_tokens,
                &[Dimension::InputTokensPerMinute][..],
            ),
            (
                headers.limit_output_tokens,
                headers.remaining_output_tokens,
                &[Dimension::OutputTokensPerMinute][..],
            ),
        ];
        for (limit, remaining, dimensions) in reports {
            let (Some(limit), Some(remaining)) = (limit, remaining) else {
                continue;
            };
            match dimensions.iter().find(|d| quota.limit(**d) == Some(limit)) {
                Some(dimension) => self
                    .limiter
                    .tighten(*dimension, limit.saturating_sub(remaining)),
                None => tracing::debug!(
                    family = %self.resolved.family,
                    limit,
                    "the server reports a limit that differs from the configured one; ignored"
                ),
            }
        }
    }
}

/// What `Call::finish` decided, before any waiting.
enum Decision {
    Now(Result<Next, Error>),
    SleepThenRetry(Duration),
}

impl Call {
    /// What the provider's buckets end up charging for a request that reported `usage`.
    ///
    /// Input is settled to the real count everywhere. Output differs by provider: OpenAI and
    /// Azure charge `n × max_tokens` when the request is admitted and do not give back what the
    /// completion did not use, so the output reservation stays charged (refunding it locally
    /// would let in requests the server then rejects with 429); Anthropic adjusts its OTPM to
    /// the real output at the end, and Gemini counts input only, so there the unused output
    /// goes back.
    fn settle_usage(&self, reserved: Cost, usage: Usage) -> Usage {
        if self.refunds_output {
            usage
        } else {
            Usage::new(
                usage.input_tokens,
                usage.output_tokens.max(reserved.output_tokens),
            )
        }
    }
}

/// Whether `provider` refunds reserved but unused output tokens (see `Call::settle_usage`).
fn refunds_unused_output(provider: Provider) -> bool {
    match provider {
        Provider::OpenAi | Provider::Azure => false,
        Provider::Anthropic | Provider::Gemini => true,
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("family", &self.resolved.family)
            .field("cost", &self.cost())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("reservation", &self.reservation)
            .finish()
    }
}

/// backoff's clock, on tokio's (virtual in paused tests) time.
#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl backoff::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// 0.5 s, doubling, jittered ±50 %, at most 30 s apart (the count and total-time caps are
/// ours: backoff's own `max_elapsed_time` is not applied to server-given waits).
fn new_backoff() -> ExponentialBackoff<TokioClock> {
    ExponentialBackoff {
        current_interval: Duration::from_millis(500),
        initial_interval: Duration::from_millis(500),
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_interval: Duration::from_secs(30),
        start_time: TokioClock.now_std(),
        max_elapsed_time: Some(MAX_RETRY_TIME),
        clock: TokioClock,
    }
}

impl TokioClock {
    fn now_std(self) -> std::time::Instant {
        backoff::Clock::now(&self)
    }
}
