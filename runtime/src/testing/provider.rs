//! The provider engine: [`MockProvider`] decides, for each call, whether the buckets admit it,
//! which fault answers it, or which 429 it gets, and records the outcome.
//!
//! How each answer is written down (bodies, headers, error envelopes) is
//! [`openai_wire`](super::openai_wire)'s business; this file only decides.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::bucket::{Bucket, MockWindow};
use super::fault::{Fault, FaultStrike};
use super::limits::{LimitViolation, MockLimits};
use super::openai_wire::{self, BucketReport, LimitHit, LimitScope};
use super::records::{Admission, MockStats, Rejection, RejectionKind};
use super::request::{MockRequest, RequestedWork};
use super::response::MockResponse;
use crate::answers::http::HttpError;
use crate::config::DEFAULT_MAX_TOKENS;

use super::ledger::{
    report, respond, Arrival, Behaviour, CompletionRule, Ledger, MockHeaders, PromptCache,
};
#[cfg(doc)]
use crate::model::tokens::count_chat;
use crate::sync::Locked;

/// The answer to one call, decided under the lock and delivered after `delay` outside it.
struct PlannedAnswer {
    outcome: Result<MockResponse, HttpError>,
    /// How long to wait before answering.
    delay: Duration,
    /// Tokens to give back to the bucket when answering ([`MockProvider::refund_unused`]).
    refund: u64,
    /// Tokens to take from the bucket when answering ([`MockProvider::charged_after`]).
    debit: u64,
}

impl PlannedAnswer {
    fn fail(error: HttpError, delay: Duration) -> Self {
        PlannedAnswer {
            outcome: Err(error),
            delay,
            refund: 0,
            debit: 0,
        }
    }
}

struct Shared {
    limits: MockLimits,
    created: Instant,
    ledger: Mutex<Ledger>,
}

/// An in-process OpenAI-style provider enforcing RPM and TPM on tokio's clock.
///
/// It is an independent referee: it does not use this crate's limiter. It keeps its own two
/// token buckets (requests and tokens), answers like OpenAI does (usage in the body,
/// `x-ratelimit-*` and `openai-processing-ms` headers, 429 `rate_limit_exceeded` with
/// `retry-after-ms`), and records every admission so a test can prove the limit was never
/// exceeded ([`MockProvider::assert_within_limits`]).
///
/// Every instant comes from [`tokio::time::Instant`] and every wait from [`tokio::time::sleep`],
/// so under `#[tokio::test(start_paused = true)]` an hour of traffic runs in milliseconds and
/// every number is exact. Cloning is cheap and every clone shares the same buckets and records,
/// so one provider can serve many tasks.
///
/// # Rules
///
/// - **Buckets.** One bucket of capacity `rpm` for requests and one of capacity `tpm` for tokens,
///   both full at creation and refilled continuously at `limit / 60 s` (exact integer arithmetic
///   to the nanosecond). One bucket pair serves every model the provider is asked for.
/// - **Charge.** At admission a request takes 1 request and `prompt + n × max_tokens` tokens (an
///   embeddings request: its input tokens). By default the charge is never refunded, whatever
///   the completion really used, which is how OpenAI documents its estimate; with
///   [`MockProvider::refund_unused`] the unused output goes back when the response is
///   delivered (Anthropic's OTPM behaviour).
/// - **Charge above TPM.** A charge above `tpm` can never fit: a 429 "Request too large" at
///   once, without `retry-after` headers ([`RejectionKind::ChargeAboveTpm`]).
/// - **Over the limit.** When either bucket cannot take the charge now: a 429 whose body is
///   OpenAI's `rate_limit_exceeded` error (`type` `"tokens"` or `"requests"`, whichever frees
///   up later) and whose `retry-after-ms` is the exact wait (rounded up to the millisecond) until
///   the same request would fit if nothing else arrived: retrying then succeeds.
/// - **Failed requests count toward RPM**, as OpenAI documents: every rate-limited 429 (a charge
///   above TPM included) takes one request from the requests bucket, without taking it below
///   empty (so hammering delays the next admission but cannot lock a client out for longer than
///   one request's refill). Turn this off with [`MockProvider::count_failed_requests`]. Faults
///   ([`Fault`]) and malformed requests never touch the buckets.
/// - **Latency** ([`MockProvider::latency`]) delays successful responses only; the admission
///   is recorded when the request arrives, before the latency.
///
/// same buckets and records, so one provider can serve many tasks.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::testing::{MockLimits, MockProvider, MockRequest};
/// use ratelimited::{Classify, ReportUsage};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let provider = MockProvider::new(MockLimits::new(500, 1_000));
/// let request = MockRequest::new("gpt-4o-mini", 600).max_tokens(100);
/// let ok = provider.chat(&request).await.unwrap();
/// assert_eq!(ok.usage().unwrap().input_tokens, 600);
/// assert_eq!(ok.header("x-ratelimit-remaining-tokens"), Some("300"));
///
/// // 700 more tokens don't fit: 400 must refill at 1,000 per minute, which takes 24 s
/// // (`retry-after-ms: 24000`, less whatever real time passed since the first call).
/// let err = provider.chat(&request).await.unwrap_err();
/// assert_eq!(err.status, 429);
/// let wait = err.classify().retry_after().unwrap();
/// assert!(wait <= Duration::from_secs(24) && wait > Duration::from_secs(23));
/// provider.assert_within_limits();
/// # }
/// ```
#[derive(Clone)]
pub struct MockProvider {
    shared: Arc<Shared>,
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ledger = self.ledger();
        f.debug_struct("MockProvider")
            .field("limits", &self.shared.limits)
            .field("latency", &ledger.behaviour.latency)
            .field("faults", &ledger.faults)
            .field("stats", &ledger.stats)
            .finish_non_exhaustive()
    }
}

impl MockProvider {
    /// A provider enforcing `limits`, with both buckets full now, no latency, no faults,
    /// completions of half of `max_tokens`, and failed requests counting toward RPM.
    ///
    /// # Panics
    ///
    /// If `limits.rpm` or `limits.tpm` is zero.
    pub fn new(limits: MockLimits) -> Self {
        assert!(
            limits.rpm > 0 && limits.tpm > 0,
            "MockLimits: rpm and tpm must be at least 1, got {limits:?}"
        );
        let now = Instant::now();
        MockProvider {
            shared: Arc::new(Shared {
                limits,
                created: now,
                ledger: Mutex::new(Ledger {
                    behaviour: Behaviour {
                        headers: MockHeaders::Provider,
                        charged_after: false,
                        latency: Duration::ZERO,
                        completion: CompletionRule::Fraction(0.5),
                        default_max_tokens: DEFAULT_MAX_TOKENS,
                        count_failed_requests: true,
                        refund_unused: false,
                        charge_by_characters: false,
                        prompt_cache: PromptCache::Off,
                    },
                    requests: Bucket::new(limits.rpm, now),
                    tokens: Bucket::new(limits.tpm, now),
                    faults: Vec::new(),
                    admissions: Vec::new(),
                    rejections: Vec::new(),
                    stats: MockStats::default(),
                    next_id: 1,
                    cached_prefixes: Default::default(),
                }),
            }),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The lock is never held across a panic that matters: recover the data.
        self.shared.ledger.locked()
    }

    /// Counts both limits as `window` says (a continuous bucket by default; a fixed or sliding
    /// minute, as gateways in front of a provider do). Set it before the first request: the
    /// buckets start over, full.
    #[must_use]
    pub fn window(self, window: MockWindow) -> Self {
        {
            let now = Instant::now();
            let limits = self.shared.limits;
            let mut ledger = self.ledger();
            ledger.requests = Bucket::with_window(limits.rpm, now, window);
            ledger.tokens = Bucket::with_window(limits.tpm, now, window);
        }
        self
    }

    /// Counts tokens from each answer's usage as it leaves, instead of prompt + `max_tokens` on
    /// arrival (as some gateways do): a request is refused only when the recorded usage is
    /// already at the limit, so the last one admitted may take it past. Requests still count
    /// on arrival.
    #[must_use]
    pub fn charged_after(self, after: bool) -> Self {
        self.ledger().behaviour.charged_after = after;
        self
    }

    /// Answers with `headers`' rate-limit headers and 429 hints (OpenAI's by default).
    #[must_use]
    pub fn headers(self, headers: MockHeaders) -> Self {
        self.ledger().behaviour.headers = headers;
        self
    }

    /// Delays every successful response by `latency` (after admission).
    #[must_use]
    pub fn latency(self, latency: Duration) -> Self {
        self.ledger().behaviour.latency = latency;
        self
    }

    /// Adds a fault (see [`Fault`]); faults are checked in the order they were added.
    #[must_use]
    pub fn fault(self, fault: Fault) -> Self {
        self.inject(fault);
        self
    }

    /// Adds a fault to a provider already in use (every clone sees it).
    pub fn inject(&self, fault: Fault) {
        self.ledger().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.ledger().faults.clear();
    }

    /// Each choice completes `ceil(max_tokens × fraction)` tokens (clamped to `[0, 1]`);
    /// the default is 0.5.
    #[must_use]
    pub fn completion_fraction(self, fraction: f64) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.ledger().behaviour.completion = CompletionRule::Fraction(fraction);
        self
    }

    /// Each choice completes `f(max_tokens)` tokens (never more than `max_tokens`).
    #[must_use]
    pub fn completion_with(self, f: impl Fn(u64) -> u64 + Send + Sync + 'static) -> Self {
        self.ledger().behaviour.completion = CompletionRule::Custom(Arc::new(f));
        self
    }

    /// The completion cap assumed for requests that give none (default: the limiter's
    /// [`DEFAULT_MAX_TOKENS`], so an annotated call and the mock agree on the charge).
    #[must_use]
    pub fn default_max_tokens(self, max_tokens: u64) -> Self {
        self.ledger().behaviour.default_max_tokens = max_tokens;
        self
    }

    /// Whether rate-limited 429s take a request from the requests bucket (default `true`, as
    /// OpenAI does; see the [rules](MockProvider#rules)).
    #[must_use]
    pub fn count_failed_requests(self, count: bool) -> Self {
        self.ledger().behaviour.count_failed_requests = count;
        self
    }

    /// Whether the unused part of the output reservation (`n × max_tokens` minus the
    /// completion tokens) goes back to the tokens bucket when the response is delivered.
    ///
    /// Default `false`: the charge at admission stands, as OpenAI documents its estimate
    /// ("calculated as the maximum of max_tokens and the estimated number of tokens"). `true`
    /// models a provider that settles to the real output afterwards, as Anthropic does for OTPM.
    /// A client that settles its own reservations to the reported usage matches the mock only in
    /// this mode; against the default it admits more than the mock will and sees 429s.
    ///
    /// With refunds, each [`Admission`] records the tokens that finally counted (prompt plus
    /// completion), so [`MockProvider::check_within_limits`] stays exact.
    #[must_use]
    pub fn refund_unused(self, refund: bool) -> Self {
        self.ledger().behaviour.refund_unused = refund;
        self
    }

    /// Whether a chat prompt whose text is known is charged OpenAI's way: a character-based
    /// estimate, `ceil(characters / 4)` tokens, instead of its token count (default `false`).
    ///
    /// OpenAI and Azure charge such an estimate on arrival and keep it; the usage still
    /// reports the real token count. On English prose the estimate is above tiktoken's count,
    /// on code and CJK text below: a client that reserves only the token count overruns this
    /// mode on prose. Requests built with [`MockRequest::new`] (no text) are charged their
    /// tokens either way.
    #[must_use]
    pub fn charge_prompt_by_characters(self, by_characters: bool) -> Self {
        self.ledger().behaviour.charge_by_characters = by_characters;
        self
    }

    /// Keeps a prompt cache that learns the prefixes requests declare
    /// ([`MockRequest::cached_prefix`]; in a JSON chat body, a leading system or developer
    /// message): the first admission of a prefix writes it to the cache, later ones read it.
    /// The usage reports both (`prompt_tokens_details.cached_tokens` and
    /// `cache_write_tokens`, [`MockResponse::cache_read_tokens`] and
    /// [`MockResponse::cache_write_tokens`]). With [`PromptCache::ReadsFree`] the tokens read
    /// from the cache are not charged to the tokens bucket, as Anthropic's ITPM does not count
    /// `cache_read_input_tokens` on current models; with [`PromptCache::ReadsCounted`] they
    /// are, as OpenAI counts them. The default is [`PromptCache::Off`]. The cache never
    /// expires.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::testing::{MockLimits, MockProvider, MockRequest, PromptCache};
    /// use ratelimited::ReportUsage;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = MockProvider::new(MockLimits::new(50, 100_000))
    ///     .prompt_cache(PromptCache::ReadsFree)
    ///     .refund_unused(true);
    /// let request = MockRequest::new("claude-sonnet-4-5", 10_000)
    ///     .cached_prefix("manual", 9_000)
    ///     .max_tokens(100);
    /// let first = provider.chat(&request).await.unwrap();
    /// assert_eq!(first.usage().unwrap().cache_creation_input_tokens, 9_000);
    /// assert_eq!(first.charged_tokens, 10_100);
    /// let second = provider.chat(&request).await.unwrap();
    /// assert_eq!(second.usage().unwrap().cache_read_input_tokens, 9_000);
    /// assert_eq!(second.charged_tokens, 1_100);
    /// # }
    /// ```
    #[must_use]
    pub fn prompt_cache(self, cache: PromptCache) -> Self {
        self.ledger().behaviour.prompt_cache = cache;
        self
    }

    /// The limits enforced.
    pub fn limits(&self) -> MockLimits {
        self.shared.limits
    }

    /// When the provider was created (the origin of [`Fault::RateLimitStorm`]).
    pub fn created(&self) -> Instant {
        self.shared.created
    }

    /// Serves one chat completion: admitted (after the configured latency) or an [`HttpError`]
    /// as OpenAI would send it.
    pub async fn chat(&self, request: &MockRequest) -> Result<MockResponse, HttpError> {
        self.serve(&request.model, RequestedWork::from(request))
            .await
    }

    /// Serves an OpenAI chat-completions request body (`model`, `messages`, `max_tokens` or
    /// `max_completion_tokens`, `n`), counting the prompt with [`count_chat`] in the model's
    /// encoding. A malformed body is a 400 `invalid_request_error`, which touches no bucket.
    pub async fn chat_json(&self, request: &Value) -> Result<MockResponse, HttpError> {
        let (model, work) = openai_wire::parse_chat(request)?;
        self.serve(&model, work).await
    }

    /// Serves an OpenAI embeddings request body (`model`, `input` as a string, an array of
    /// strings, or token arrays; optional `dimensions`, default 8). The charge is the input
    /// tokens. A malformed body is a 400 `invalid_request_error`.
    pub async fn embeddings_json(&self, request: &Value) -> Result<MockResponse, HttpError> {
        let (model, work) = openai_wire::parse_embeddings(request)?;
        self.serve(&model, work).await
    }

    /// The shared core of every entry point: decide under the lock, then wait outside it.
    async fn serve(&self, model: &str, work: RequestedWork) -> Result<MockResponse, HttpError> {
        let PlannedAnswer {
            outcome,
            delay,
            refund,
            debit,
        } = self.decide(model, &work);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if refund > 0 || debit > 0 {
            let now = Instant::now();
            let mut ledger = self.ledger();
            ledger.tokens.refill(now);
            ledger.tokens.give_back(refund);
            // Counted as the answer leaves, possibly past the limit.
            ledger.tokens.take(debit);
        }
        outcome
    }

    /// Faults first, then a charge that can never fit, then the buckets (see the rules).
    fn decide(&self, model: &str, work: &RequestedWork) -> PlannedAnswer {
        let now = Instant::now();
        let mut guard = self.ledger();
        let ledger = &mut *guard;
        ledger.stats.calls += 1;
        let charge = work.charge(
            ledger.behaviour.default_max_tokens,
            ledger.behaviour.charge_by_characters,
        );
        let (cache_read, cache_write) = match (ledger.behaviour.prompt_cache, work.prefix()) {
            (PromptCache::Off, _) | (_, None) => (0, 0),
            (_, Some((key, tokens))) if ledger.cached_prefixes.contains(key) => (*tokens, 0),
            (_, Some((_, tokens))) => (0, *tokens),
        };
        let free = if ledger.behaviour.prompt_cache == PromptCache::ReadsFree {
            cache_read
        } else {
            0
        };
        let arrival = Arrival {
            at: now,
            model,
            charge: charge.saturating_sub(free),
            cache_read,
            cache_write,
        };
        ledger.requests.refill(now);
        ledger.tokens.refill(now);

        if let Some(answer) = self.answer_fault(ledger, &arrival) {
            return answer;
        }
        let after = ledger.behaviour.charged_after;
        if arrival.charge > self.shared.limits.tpm && !after {
            ledger.count_failed_request();
            return self.reject_charge_above_tpm(ledger, &arrival);
        }
        // Charged after the response, a request is refused only when the recorded usage is
        // already at the limit.
        let needs = if after { 1 } else { arrival.charge };
        let fits_now =
            ledger.requests.wait_for(1).is_zero() && ledger.tokens.wait_for(needs).is_zero();
        if fits_now {
            return self.admit(ledger, &arrival, work);
        }
        ledger.count_failed_request();
        self.reject_over_limit(ledger, &arrival)
    }

    /// The answer of the first active fault, if any.
    fn answer_fault(&self, ledger: &mut Ledger, arrival: &Arrival<'_>) -> Option<PlannedAnswer> {
        let created = self.shared.created;
        let strike = ledger
            .faults
            .iter_mut()
            .find_map(|fault| fault.strike(arrival.at, created))?;
        match strike {
            FaultStrike::Storm { left } => {
                let retry_after = openai_wire::ceil_to_ms(left).max(Duration::from_millis(1));
                ledger.reject(Rejection {
                    at: arrival.at,
                    tokens: arrival.charge,
                    kind: RejectionKind::Storm,
                    retry_after: Some(retry_after),
                });
                // The storm is a server-wide requests limit: its headers say so, whatever the
                // buckets hold.
                let rpm = self.shared.limits.rpm;
                let requests = BucketReport {
                    limit: rpm,
                    remaining: 0,
                    reset: retry_after,
                };
                let headers = openai_wire::rate_limit_headers(requests, report(&ledger.tokens));
                let hit = LimitHit {
                    scope: LimitScope::Requests,
                    limit: rpm,
                    used: rpm,
                    requested: 1,
                };
                let error =
                    openai_wire::rate_limit_exceeded(arrival.model, hit, retry_after, headers);
                Some(PlannedAnswer::fail(error, Duration::ZERO))
            }
            FaultStrike::Failure { error, delay } => {
                ledger.stats.faults += 1;
                Some(PlannedAnswer::fail(error, delay))
            }
        }
    }

    fn reject_charge_above_tpm(&self, ledger: &mut Ledger, arrival: &Arrival<'_>) -> PlannedAnswer {
        ledger.reject(Rejection {
            at: arrival.at,
            tokens: arrival.charge,
            kind: RejectionKind::ChargeAboveTpm,
            retry_after: None,
        });
        let headers = ledger.rate_limit_headers();
        let tpm = self.shared.limits.tpm;
        let error = openai_wire::request_too_large(arrival.model, tpm, arrival.charge, headers);
        PlannedAnswer::fail(error, Duration::ZERO)
    }

    /// A 429 whose retry-after is the exact wait until the same request fits, blaming the
    /// bucket that frees up later.
    fn reject_over_limit(&self, ledger: &mut Ledger, arrival: &Arrival<'_>) -> PlannedAnswer {
        let charge = arrival.charge;
        let request_wait = ledger.requests.wait_for(1);
        let token_wait = ledger.tokens.wait_for(charge);
        let retry_after = openai_wire::ceil_to_ms(request_wait.max(token_wait));
        let (kind, bucket, scope, requested) = if token_wait >= request_wait {
            (
                RejectionKind::Tokens,
                &ledger.tokens,
                LimitScope::Tokens,
                charge,
            )
        } else {
            (
                RejectionKind::Requests,
                &ledger.requests,
                LimitScope::Requests,
                1,
            )
        };
        let hit = LimitHit {
            scope,
            limit: bucket.capacity(),
            used: bucket.capacity() - bucket.remaining(),
            requested,
        };
        ledger.reject(Rejection {
            at: arrival.at,
            tokens: charge,
            kind,
            retry_after: Some(retry_after),
        });
        let headers = ledger.rate_limit_headers();
        let error = match ledger.behaviour.headers {
            MockHeaders::Provider => {
                openai_wire::rate_limit_exceeded(arrival.model, hit, retry_after, headers)
            }
            MockHeaders::Gateway => openai_wire::gateway_rate_limited(retry_after, headers),
        };
        PlannedAnswer::fail(error, Duration::ZERO)
    }

    /// Takes the charge, writes the response and records the admission (net of any refund).
    fn admit(
        &self,
        ledger: &mut Ledger,
        arrival: &Arrival<'_>,
        work: &RequestedWork,
    ) -> PlannedAnswer {
        let charge = arrival.charge;
        let after = ledger.behaviour.charged_after;
        ledger.requests.take(1);
        if !after {
            ledger.tokens.take(charge);
        }
        if let Some((key, _)) = work.prefix() {
            if ledger.behaviour.prompt_cache != PromptCache::Off {
                ledger.cached_prefixes.insert(key.clone());
            }
        }
        let response = respond(ledger, arrival, work);
        let free = if ledger.behaviour.prompt_cache == PromptCache::ReadsFree {
            response.cache_read_tokens
        } else {
            0
        };
        let used = response
            .prompt_tokens
            .saturating_sub(free)
            .saturating_add(response.completion_tokens);
        let refund = if ledger.behaviour.refund_unused && !after {
            charge.saturating_sub(used)
        } else {
            0
        };
        let (debit, counted) = if after {
            (used, used)
        } else {
            (0, charge.saturating_sub(refund))
        };
        ledger.admissions.push(Admission::new(arrival.at, counted));
        PlannedAnswer {
            outcome: Ok(response),
            delay: ledger.behaviour.latency,
            refund,
            debit,
        }
    }

    /// Every admission so far, in admission order.
    pub fn admissions(&self) -> Vec<Admission> {
        self.ledger().admissions.clone()
    }

    /// Every rate-limit 429 so far (over the limit, a charge above TPM, a storm), in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.ledger().rejections.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> MockStats {
        let mut stats = self.ledger().stats;
        stats.elapsed = Instant::now().saturating_duration_since(self.shared.created);
        stats
    }

    /// [`MockLimits::check`] of this provider's admissions against its own limits.
    pub fn check_within_limits(&self) -> Result<(), LimitViolation> {
        self.shared.limits.check(&self.ledger().admissions)
    }

    /// Panics with the violation if [`MockProvider::check_within_limits`] finds one.
    #[track_caller]
    pub fn assert_within_limits(&self) {
        if let Err(violation) = self.check_within_limits() {
            panic!("mock provider: {violation}");
        }
    }
}
