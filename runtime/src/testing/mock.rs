//! An in-process mock of an OpenAI-style provider that enforces rate limits on tokio's clock.
//!
//! [`MockProvider`] is an independent referee: it does not use this crate's limiter. It keeps its
//! own two token buckets (requests and tokens), answers like OpenAI does (usage in the body,
//! `x-ratelimit-*` headers, 429 `rate_limit_exceeded` with `retry-after-ms`), and records every
//! admission so a test can prove the limit was never exceeded ([`MockProvider::assert_within_limits`]).
//!
//! Every instant comes from [`tokio::time::Instant`] and every wait from [`tokio::time::sleep`],
//! so under `#[tokio::test(start_paused = true)]` an hour of traffic runs in milliseconds and
//! every number is exact.
//!
//! # Rules
//!
//! - **Buckets.** One bucket of capacity `rpm` for requests and one of capacity `tpm` for tokens,
//!   both full at creation and refilled continuously at `limit / 60 s` (exact integer arithmetic
//!   to the nanosecond). One bucket pair serves every model the provider is asked for.
//! - **Charge.** At admission a request takes 1 request and `prompt + n × max_tokens` tokens (an
//!   embeddings request: its input tokens). By default the charge is never refunded, whatever
//!   the completion really used, which is how OpenAI documents its estimate; with
//!   [`MockProvider::refund_unused`] the unused output goes back when the response is
//!   delivered (Anthropic's OTPM behaviour).
//! - **Too large.** A charge above `tpm` can never fit: a 429 "Request too large" at once,
//!   without `retry-after` headers.
//! - **Over the limit.** When either bucket cannot take the charge now: a 429 whose body is
//!   OpenAI's `rate_limit_exceeded` error (`type` `"tokens"` or `"requests"`, whichever frees
//!   up later) and whose `retry-after-ms` is the exact wait (rounded up to the millisecond) until
//!   the same request would fit if nothing else arrived: retrying then succeeds.
//! - **Failed requests count toward RPM**, as OpenAI documents: every rate-limited 429 (too
//!   large included) takes one request from the requests bucket, without taking it below empty
//!   (so hammering delays the next admission but cannot lock a client out for longer than one
//!   request's refill). Turn this off with [`MockProvider::count_failed_requests`]. Faults
//!   ([`Fault`]) and malformed requests never touch the buckets.
//! - **Latency** ([`MockProvider::latency`]) delays successful responses only; the admission
//!   is recorded when the request arrives, before the latency.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::config::DEFAULT_MAX_TOKENS;
use crate::http::{HttpError, RateLimitHeaders};
use crate::quota::{Dimension, Quota, Usage};
use crate::tokens::{
    count_chat, count_tokens, encoding_for_model, ChatMessage, Encoding, EstimateTokens,
};
use crate::usage::ReportUsage;
use crate::{Budget, OutputBudget};

/// Nanoseconds in the one-minute window every limit is expressed per.
const WINDOW_NANOS: u128 = 60_000_000_000;

/// The organization named in error messages.
const ORGANIZATION: &str = "org-mock";

/// The limits a [`MockProvider`] enforces: requests and tokens per minute.
///
/// ```
/// use ratelimited_runtime::testing::MockLimits;
/// let limits = MockLimits::new(500, 30_000);
/// assert_eq!((limits.rpm, limits.tpm), (500, 30_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MockLimits {
    /// Requests per minute: the requests bucket's capacity (refilled at `rpm / 60 s`).
    pub rpm: u64,
    /// Tokens per minute: the tokens bucket's capacity (refilled at `tpm / 60 s`).
    pub tpm: u64,
}

impl MockLimits {
    /// Limits of `rpm` requests and `tpm` tokens per minute.
    pub const fn new(rpm: u64, tpm: u64) -> Self {
        MockLimits { rpm, tpm }
    }

    /// Checks that `admissions` could all have passed token buckets of these limits, each full
    /// at the first admission.
    ///
    /// With continuous refill the exact invariant is not "at most `tpm` in any 60 s window" (a
    /// full bucket at `t` plus a full refill by `t + 60 s` legally admits `2 × tpm` in a closed
    /// 60 s window) but the token-bucket one: for every interval `[t1, t2]`, what was admitted
    /// at instants inside it is at most `capacity + capacity × (t2 − t1) / 60 s`. This checks
    /// exactly that (integer arithmetic to the nanosecond, in O(n log n)), for requests (1 per
    /// admission) and for tokens, and returns the first violation found. Admissions need not be
    /// sorted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ratelimited_runtime::testing::{Admission, MockLimits};
    /// use tokio::time::Instant;
    ///
    /// let t0 = Instant::now();
    /// let limits = MockLimits::new(100, 600); // 10 tokens per second
    /// let burst_then_refill = [
    ///     Admission::new(t0, 600),
    ///     Admission::new(t0 + Duration::from_secs(60), 600),
    /// ];
    /// assert!(limits.check(&burst_then_refill).is_ok());
    /// let too_fast = [
    ///     Admission::new(t0, 600),
    ///     Admission::new(t0 + Duration::from_secs(1), 11),
    /// ];
    /// assert!(limits.check(&too_fast).is_err());
    /// ```
    pub fn check(&self, admissions: &[Admission]) -> Result<(), LimitViolation> {
        let mut sorted: Vec<&Admission> = admissions.iter().collect();
        sorted.sort_by_key(|a| a.at);
        check_dimension(Dimension::RequestsPerMinute, self.rpm, &sorted, |_| 1)?;
        check_dimension(Dimension::TokensPerMinute, self.tpm, &sorted, |a| a.tokens)
    }
}

/// The same limits as a [`Quota`] (headroom 1), to configure a limiter against the mock.
impl From<MockLimits> for Quota {
    fn from(limits: MockLimits) -> Quota {
        Quota::default().rpm(limits.rpm).tpm(limits.tpm)
    }
}

/// The O(n) scan behind [`MockLimits::check`] for one dimension, over admissions sorted by time.
///
/// With `P(k)` the charges before index `k` and `t(k)` its time, the pair `i <= j` violates iff
/// `(P(j+1) − P(i)) × W > C × W + C × (t(j) − t(i))`, i.e. `A(j) − B(i) > C × W` with
/// `A(j) = P(j+1) × W − C × t(j)` and `B(i) = P(i) × W − C × t(i)`: keep the minimum `B`.
fn check_dimension(
    dimension: Dimension,
    capacity: u64,
    sorted: &[&Admission],
    charge: impl Fn(&Admission) -> u64,
) -> Result<(), LimitViolation> {
    let Some(first) = sorted.first() else {
        return Ok(());
    };
    let t0 = first.at;
    let cap = i128::from(capacity);
    let window = WINDOW_NANOS as i128;
    let mut prefix: i128 = 0;
    // (B(i), i, P(i)) with the smallest B so far.
    let mut best: Option<(i128, usize, i128)> = None;
    for (j, admission) in sorted.iter().enumerate() {
        let t = (admission.at - t0).as_nanos() as i128;
        let b = prefix * window - cap * t;
        if best.is_none_or(|(min, _, _)| b < min) {
            best = Some((b, j, prefix));
        }
        prefix += i128::from(charge(admission));
        let a = prefix * window - cap * t;
        let (min, i, prefix_i) = best.expect("set above");
        if a - min > cap * window {
            let from = sorted[i].at;
            let span = admission.at - from;
            let refill = (u128::from(capacity) * span.as_nanos()) / WINDOW_NANOS;
            return Err(LimitViolation {
                dimension,
                capacity,
                from,
                to: admission.at,
                admitted: u64::try_from(prefix - prefix_i).unwrap_or(u64::MAX),
                allowed: u64::try_from(u128::from(capacity) + refill).unwrap_or(u64::MAX),
            });
        }
    }
    Ok(())
}

/// An interval in which more was admitted than a token bucket allows (see [`MockLimits::check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitViolation {
    /// [`Dimension::RequestsPerMinute`] or [`Dimension::TokensPerMinute`].
    pub dimension: Dimension,
    /// The bucket's capacity (the per-minute limit).
    pub capacity: u64,
    /// The first admission of the interval.
    pub from: Instant,
    /// The last admission of the interval.
    pub to: Instant,
    /// Requests or tokens admitted at instants in `[from, to]`.
    pub admitted: u64,
    /// The most the bucket allows over that interval, rounded down:
    /// `capacity + capacity × (to − from) / 60 s`.
    pub allowed: u64,
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.dimension {
            Dimension::RequestsPerMinute => "requests",
            _ => "tokens",
        };
        write!(
            f,
            "{} limit exceeded: {} {unit} admitted within {:?}, but a bucket of capacity {} \
             refilling {} per minute allows at most {}",
            self.dimension,
            self.admitted,
            self.to - self.from,
            self.capacity,
            self.capacity,
            self.allowed
        )
    }
}

impl std::error::Error for LimitViolation {}

/// A failure the mock injects instead of serving a request (see [`MockProvider::fault`]).
///
/// Faults are checked in the order they were added, before the buckets; the first active one
/// answers the request. Fault responses never touch the buckets and are not admissions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Every request is answered 429 `rate_limit_exceeded` (type `requests`) until `until` has
    /// passed since the provider was created, with `retry-after-ms` set to the time left. Each
    /// one is recorded as a [`Rejection`] of kind [`RejectionKind::Storm`].
    RateLimitStorm {
        /// How long after creation the storm ends.
        until: Duration,
    },
    /// Every request is answered 429 `insufficient_quota` (out of credit), which must never be
    /// retried.
    InsufficientQuota,
    /// The next `times` requests are answered with HTTP `code` (500, 502, 503, 529, ...): an
    /// OpenAI `server_error` body, or Anthropic's `overloaded_error` for 529.
    Status {
        /// The HTTP status.
        code: u16,
        /// How many requests get it.
        times: u32,
    },
    /// The next `times` requests hang for `after`, then fail with HTTP 408 (`Request timed
    /// out.`), which classifies as transient.
    Timeout {
        /// How long the request hangs first.
        after: Duration,
        /// How many requests time out.
        times: u32,
    },
}

/// One request to [`MockProvider::chat`].
///
/// ```
/// use ratelimited_runtime::testing::MockRequest;
/// let request = MockRequest::new("gpt-4o-mini", 1_000).max_tokens(200).n(2);
/// assert_eq!(request.charge(16), 1_000 + 2 * 200);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MockRequest {
    /// The model id; it only appears in responses and messages (one bucket pair serves all).
    pub model: String,
    /// The prompt's tokens.
    pub prompt_tokens: u64,
    /// The completion cap per choice; `None` uses the provider's default (the limiter's own
    /// [`DEFAULT_MAX_TOKENS`] unless [`MockProvider::default_max_tokens`] changed it).
    pub max_tokens: Option<u64>,
    /// Choices to generate (0 is read as 1).
    pub n: u32,
}

impl MockRequest {
    /// A request with a known prompt size, no `max_tokens` and `n = 1`.
    pub fn new(model: impl Into<String>, prompt_tokens: u64) -> Self {
        MockRequest {
            model: model.into(),
            prompt_tokens,
            max_tokens: None,
            n: 1,
        }
    }

    /// A request whose prompt is `text`, counted with [`count_tokens`] in the model's encoding.
    pub fn text(model: impl Into<String>, text: &str) -> Self {
        let model = model.into();
        let tokens = count_tokens(encoding_for_model(&model), text);
        MockRequest::new(model, tokens)
    }

    /// A chat request, counted with [`count_chat`] (message framing included) in the model's
    /// encoding.
    pub fn chat(model: impl Into<String>, messages: &[ChatMessage]) -> Self {
        let model = model.into();
        let tokens = count_chat(encoding_for_model(&model), messages);
        MockRequest::new(model, tokens)
    }

    /// Sets the completion cap per choice.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u64) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the number of choices.
    #[must_use]
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// What admission charges against the tokens bucket: `prompt + n × max_tokens`, with
    /// `default_max_tokens` when the request gives none.
    pub fn charge(&self, default_max_tokens: u64) -> u64 {
        chat_charge(
            self.prompt_tokens,
            self.max_tokens.unwrap_or(default_max_tokens),
            self.n,
        )
    }
}

/// `prompt + n × max_tokens`, with `n = 0` read as 1.
fn chat_charge(prompt_tokens: u64, max_tokens: u64, n: u32) -> u64 {
    prompt_tokens.saturating_add(u64::from(n.max(1)).saturating_mul(max_tokens))
}

/// The request's prompt tokens, whatever the encoding (they are already counted).
impl EstimateTokens for MockRequest {
    fn estimate_tokens(&self, _encoding: Encoding) -> u64 {
        self.prompt_tokens
    }
}

/// `max_tokens` and `n`, so `#[rate_limited]` reserves what the mock will charge.
impl OutputBudget for MockRequest {
    fn output_budget(&self) -> Budget {
        Budget {
            max_tokens: self.max_tokens,
            n: Some(self.n.max(1)),
        }
    }
}

/// A successful response: OpenAI's JSON body plus the headers it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct MockResponse {
    /// The model id from the request.
    pub model: String,
    /// Prompt (input) tokens, as in `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// Completion tokens over all choices, as in `usage.completion_tokens` (0 for embeddings).
    pub completion_tokens: u64,
    /// What admission charged against the tokens bucket.
    pub charged_tokens: u64,
    /// When the request was admitted (its arrival, before any latency).
    pub admitted_at: Instant,
    /// The response headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets
    /// as Go durations) and `x-request-id`.
    pub headers: Vec<(String, String)>,
    /// The OpenAI-shaped JSON body (`chat.completion` or an embeddings `list`) with its `usage`.
    pub body: Value,
}

impl MockResponse {
    /// The first value of header `name`, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    /// The `x-ratelimit-*` headers, parsed.
    pub fn rate_limit_headers(&self) -> RateLimitHeaders {
        RateLimitHeaders::from_pairs(
            self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SystemTime::now(),
        )
    }
}

/// `prompt_tokens` in, `completion_tokens` out: the same as the body's `usage`.
impl ReportUsage for MockResponse {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.prompt_tokens, self.completion_tokens))
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        Some(MockResponse::rate_limit_headers(self))
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One admitted request: when, and how many tokens it counts against the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Admission {
    /// When it was admitted.
    pub at: Instant,
    /// Tokens it counts: the charge `prompt + n × max_tokens` (embeddings: the input tokens),
    /// or with [`MockProvider::refund_unused`], `prompt + completion`.
    pub tokens: u64,
}

impl Admission {
    /// An admission of `tokens` at `at` (one request).
    pub const fn new(at: Instant, tokens: u64) -> Self {
        Admission { at, tokens }
    }
}

/// Why a request was answered with a rate-limit 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The requests bucket was empty (`type: "requests"`).
    Requests,
    /// The tokens bucket could not take the charge now (`type: "tokens"`).
    Tokens,
    /// The charge exceeds the TPM limit itself: "Request too large".
    TooLarge,
    /// A [`Fault::RateLimitStorm`] was in progress.
    Storm,
}

/// One rate-limit 429 the mock answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejection {
    /// When.
    pub at: Instant,
    /// The tokens the request would have been charged.
    pub tokens: u64,
    /// Why.
    pub kind: RejectionKind,
    /// The `retry-after-ms` sent, rounded up to the millisecond (`None` for too large).
    pub retry_after: Option<Duration>,
}

/// Counters over everything a [`MockProvider`] answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockStats {
    /// Requests that reached the enforcement core (well-formed ones).
    pub calls: u64,
    /// Requests admitted and answered successfully.
    pub admitted: u64,
    /// Rate-limit 429s: over the limit, too large, or a storm (see [`MockProvider::rejections`]).
    pub rate_limited: u64,
    /// Injected faults answered: `insufficient_quota`, status codes, timeouts.
    pub faults: u64,
    /// Tokens charged by the admitted requests.
    pub admitted_tokens: u64,
    /// Prompt tokens of the admitted requests.
    pub prompt_tokens: u64,
    /// Completion tokens reported by the admitted requests.
    pub completion_tokens: u64,
    /// Time since the provider was created.
    pub elapsed: Duration,
}

type CompletionFn = dyn Fn(u64) -> u64 + Send + Sync;

#[derive(Clone)]
enum Completion {
    Fraction(f64),
    Custom(Arc<CompletionFn>),
}

impl Completion {
    /// Completion tokens of one choice with this cap, never above the cap.
    fn per_choice(&self, max_tokens: u64) -> u64 {
        let tokens = match self {
            Completion::Fraction(f) => (max_tokens as f64 * f).ceil() as u64,
            Completion::Custom(f) => f(max_tokens),
        };
        tokens.min(max_tokens)
    }
}

#[derive(Clone)]
struct Config {
    latency: Duration,
    completion: Completion,
    default_max_tokens: u64,
    count_failed_requests: bool,
    refund_unused: bool,
}

/// A continuous-refill token bucket in exact integer arithmetic.
///
/// `debt` is what is used, in token-nanoseconds per window: one token is `WINDOW_NANOS` units,
/// and each nanosecond refills `capacity` units, so a bucket of capacity `C` refills `C` tokens
/// per 60 s with no rounding anywhere.
#[derive(Clone, Debug)]
struct Bucket {
    capacity: u64,
    debt: u128,
    at: Instant,
}

impl Bucket {
    fn new(capacity: u64, now: Instant) -> Self {
        Bucket {
            capacity,
            debt: 0,
            at: now,
        }
    }

    fn full(&self) -> u128 {
        u128::from(self.capacity) * WINDOW_NANOS
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let refill = (now - self.at).as_nanos() * u128::from(self.capacity);
            self.debt = self.debt.saturating_sub(refill);
            self.at = now;
        }
    }

    /// The exact time until `amount` fits (zero if it fits now); `amount <= capacity`.
    fn wait_for(&self, amount: u64) -> Duration {
        let excess = (self.debt + u128::from(amount) * WINDOW_NANOS).saturating_sub(self.full());
        nanos(excess.div_ceil(u128::from(self.capacity)))
    }

    fn take(&mut self, amount: u64) {
        self.debt += u128::from(amount) * WINDOW_NANOS;
    }

    /// Returns `amount` (a refund), never above full.
    fn give_back(&mut self, amount: u64) {
        self.debt = self.debt.saturating_sub(u128::from(amount) * WINDOW_NANOS);
    }

    /// Takes `amount`, but never below empty.
    fn take_saturating(&mut self, amount: u64) {
        self.debt = (self.debt + u128::from(amount) * WINDOW_NANOS).min(self.full());
    }

    /// Whole units left, rounded down.
    fn remaining(&self) -> u64 {
        (self.full().saturating_sub(self.debt) / WINDOW_NANOS) as u64
    }

    /// The time until the bucket is full again.
    fn reset(&self) -> Duration {
        nanos(self.debt.div_ceil(u128::from(self.capacity)))
    }
}

fn nanos(n: u128) -> Duration {
    Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
}

/// `d` rounded up to a whole millisecond.
fn ceil_ms(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000) as u64
}

/// A duration as Go's `time.Duration.String` prints it, after rounding up to the millisecond:
/// `0s`, `20ms`, `1s`, `46.001s`, `6m0s`, `1h30m0s`. OpenAI's `x-ratelimit-reset-*` headers and
/// "Please try again in ..." hints use this format.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = ceil_ms(d);
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let seconds = (ms / 1000) % 60;
    let millis = ms % 1000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    if millis > 0 {
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// What one call asks of the core.
#[derive(Clone, Debug)]
pub(crate) enum Work {
    Chat {
        prompt_tokens: u64,
        max_tokens: Option<u64>,
        n: u32,
    },
    Embeddings {
        /// Tokens of each input.
        inputs: Vec<u64>,
        dimensions: usize,
    },
}

/// What the core decided for one call, before any waiting.
struct Decision {
    outcome: Result<MockResponse, HttpError>,
    /// How long to wait before answering.
    delay: Duration,
    /// Tokens to give back to the bucket when answering ([`MockProvider::refund_unused`]).
    refund: u64,
}

impl Decision {
    fn fail(error: HttpError, delay: Duration) -> Self {
        Decision {
            outcome: Err(error),
            delay,
            refund: 0,
        }
    }
}

struct State {
    config: Config,
    requests: Bucket,
    tokens: Bucket,
    faults: Vec<Fault>,
    admissions: Vec<Admission>,
    rejections: Vec<Rejection>,
    stats: MockStats,
    next_id: u64,
}

struct Inner {
    limits: MockLimits,
    created: Instant,
    state: Mutex<State>,
}

/// An in-process OpenAI-style provider enforcing RPM and TPM on tokio's clock.
///
/// See the [module docs](self) for the exact rules. Cloning is cheap and every clone shares the
/// same buckets and records, so one provider can serve many tasks.
///
/// ```
/// use std::time::Duration;
/// use ratelimited_runtime::testing::{MockLimits, MockProvider, MockRequest};
/// use ratelimited_runtime::{Classify, ReportUsage};
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
    inner: Arc<Inner>,
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MockProvider")
            .field("limits", &self.inner.limits)
            .field("latency", &state.config.latency)
            .field("faults", &state.faults)
            .field("stats", &state.stats)
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
            inner: Arc::new(Inner {
                limits,
                created: now,
                state: Mutex::new(State {
                    config: Config {
                        latency: Duration::ZERO,
                        completion: Completion::Fraction(0.5),
                        default_max_tokens: DEFAULT_MAX_TOKENS,
                        count_failed_requests: true,
                        refund_unused: false,
                    },
                    requests: Bucket::new(limits.rpm, now),
                    tokens: Bucket::new(limits.tpm, now),
                    faults: Vec::new(),
                    admissions: Vec::new(),
                    rejections: Vec::new(),
                    stats: MockStats::default(),
                    next_id: 1,
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock is never held across a panic that matters: recover the data.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Delays every successful response by `latency` (after admission).
    #[must_use]
    pub fn latency(self, latency: Duration) -> Self {
        self.state().config.latency = latency;
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
        self.state().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
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
        self.state().config.completion = Completion::Fraction(fraction);
        self
    }

    /// Each choice completes `f(max_tokens)` tokens (never more than `max_tokens`).
    #[must_use]
    pub fn completion_with(self, f: impl Fn(u64) -> u64 + Send + Sync + 'static) -> Self {
        self.state().config.completion = Completion::Custom(Arc::new(f));
        self
    }

    /// The completion cap assumed for requests that give none (default: the limiter's
    /// [`DEFAULT_MAX_TOKENS`], so an annotated call and the mock agree on the charge).
    #[must_use]
    pub fn default_max_tokens(self, max_tokens: u64) -> Self {
        self.state().config.default_max_tokens = max_tokens;
        self
    }

    /// Whether rate-limited 429s take a request from the requests bucket (default `true`, as
    /// OpenAI does; see the [module docs](self)).
    #[must_use]
    pub fn count_failed_requests(self, count: bool) -> Self {
        self.state().config.count_failed_requests = count;
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
        self.state().config.refund_unused = refund;
        self
    }

    /// The limits enforced.
    pub fn limits(&self) -> MockLimits {
        self.inner.limits
    }

    /// When the provider was created (the origin of [`Fault::RateLimitStorm`]).
    pub fn created(&self) -> Instant {
        self.inner.created
    }

    /// Serves one chat completion: admitted (after the configured latency) or an [`HttpError`]
    /// as OpenAI would send it.
    pub async fn chat(&self, request: &MockRequest) -> Result<MockResponse, HttpError> {
        self.serve(
            &request.model,
            Work::Chat {
                prompt_tokens: request.prompt_tokens,
                max_tokens: request.max_tokens,
                n: request.n.max(1),
            },
        )
        .await
    }

    /// Serves an OpenAI chat-completions request body (`model`, `messages`, `max_tokens` or
    /// `max_completion_tokens`, `n`), counting the prompt with [`count_chat`] in the model's
    /// encoding. A malformed body is a 400 `invalid_request_error`, which touches no bucket.
    pub async fn chat_json(&self, request: &Value) -> Result<MockResponse, HttpError> {
        let (model, work) = parse_chat(request)?;
        self.serve(&model, work).await
    }

    /// Serves an OpenAI embeddings request body (`model`, `input` as a string, an array of
    /// strings, or token arrays; optional `dimensions`, default 8). The charge is the input
    /// tokens. A malformed body is a 400 `invalid_request_error`.
    pub async fn embeddings_json(&self, request: &Value) -> Result<MockResponse, HttpError> {
        let (model, work) = parse_embeddings(request)?;
        self.serve(&model, work).await
    }

    /// The shared core of every entry point: decide under the lock, then wait outside it.
    pub(crate) async fn serve(&self, model: &str, work: Work) -> Result<MockResponse, HttpError> {
        let Decision {
            outcome,
            delay,
            refund,
        } = self.decide(model, work);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if refund > 0 {
            let now = Instant::now();
            let mut state = self.state();
            state.tokens.refill(now);
            state.tokens.give_back(refund);
        }
        outcome
    }

    fn decide(&self, model: &str, work: Work) -> Decision {
        let now = Instant::now();
        let limits = self.inner.limits;
        let mut guard = self.state();
        let state = &mut *guard;
        state.stats.calls += 1;
        let charge = match &work {
            Work::Chat {
                prompt_tokens,
                max_tokens,
                n,
            } => chat_charge(
                *prompt_tokens,
                max_tokens.unwrap_or(state.config.default_max_tokens),
                *n,
            ),
            Work::Embeddings { inputs, .. } => {
                inputs.iter().fold(0u64, |sum, t| sum.saturating_add(*t))
            }
        };
        state.requests.refill(now);
        state.tokens.refill(now);

        if let Some(result) = self.fault_response(state, now, model, charge) {
            return result;
        }

        if charge > limits.tpm {
            if state.config.count_failed_requests {
                state.requests.take_saturating(1);
            }
            state.stats.rate_limited += 1;
            state.rejections.push(Rejection {
                at: now,
                tokens: charge,
                kind: RejectionKind::TooLarge,
                retry_after: None,
            });
            let message = format!(
                "Request too large for {model} in organization {ORGANIZATION} on tokens per min \
                 (TPM): Limit {}, Requested {charge}. The input or output tokens must be reduced \
                 in order to run successfully. Visit https://platform.openai.com/account/rate-limits \
                 to learn more.",
                limits.tpm
            );
            let error = HttpError {
                status: 429,
                headers: limit_headers(state, limits),
                body: error_body(&message, "tokens", Some("rate_limit_exceeded")),
            };
            return Decision::fail(error, Duration::ZERO);
        }

        let request_wait = state.requests.wait_for(1);
        let token_wait = state.tokens.wait_for(charge);
        if request_wait.is_zero() && token_wait.is_zero() {
            state.requests.take(1);
            state.tokens.take(charge);
            let response = self.respond(state, now, model, &work, charge);
            let used = response
                .prompt_tokens
                .saturating_add(response.completion_tokens);
            let refund = if state.config.refund_unused {
                charge.saturating_sub(used)
            } else {
                0
            };
            state
                .admissions
                .push(Admission::new(now, charge.saturating_sub(refund)));
            return Decision {
                outcome: Ok(response),
                delay: state.config.latency,
                refund,
            };
        }

        if state.config.count_failed_requests {
            state.requests.take_saturating(1);
        }
        let request_wait = state.requests.wait_for(1);
        let token_wait = state.tokens.wait_for(charge);
        let wait = request_wait.max(token_wait);
        let retry_ms = ceil_ms(wait);
        let retry_after = Duration::from_millis(retry_ms);
        let (kind, bucket, limit, requested, label) = if token_wait >= request_wait {
            (
                RejectionKind::Tokens,
                &state.tokens,
                limits.tpm,
                charge,
                "tokens per min (TPM)",
            )
        } else {
            (
                RejectionKind::Requests,
                &state.requests,
                limits.rpm,
                1,
                "requests per min (RPM)",
            )
        };
        let used = limit - bucket.remaining();
        let message = format!(
            "Rate limit reached for {model} in organization {ORGANIZATION} on {label}: Limit \
             {limit}, Used {used}, Requested {requested}. Please try again in {}. Visit \
             https://platform.openai.com/account/rate-limits to learn more.",
            go_duration(retry_after)
        );
        let kind_name = if kind == RejectionKind::Tokens {
            "tokens"
        } else {
            "requests"
        };
        state.stats.rate_limited += 1;
        state.rejections.push(Rejection {
            at: now,
            tokens: charge,
            kind,
            retry_after: Some(retry_after),
        });
        let mut headers = limit_headers(state, limits);
        push_retry_after(&mut headers, retry_ms);
        let error = HttpError {
            status: 429,
            headers,
            body: error_body(&message, kind_name, Some("rate_limit_exceeded")),
        };
        Decision::fail(error, Duration::ZERO)
    }

    /// The answer of the first active fault, if any.
    fn fault_response(
        &self,
        state: &mut State,
        now: Instant,
        model: &str,
        charge: u64,
    ) -> Option<Decision> {
        let limits = self.inner.limits;
        let created = self.inner.created;
        for index in 0..state.faults.len() {
            match &mut state.faults[index] {
                Fault::RateLimitStorm { until } => {
                    let remaining = match created.checked_add(*until) {
                        Some(end) if end > now => end - now,
                        Some(_) => continue,
                        None => Duration::from_secs(3600),
                    };
                    let retry_ms = ceil_ms(remaining).max(1);
                    let retry_after = Duration::from_millis(retry_ms);
                    let message = format!(
                        "Rate limit reached for {model} in organization {ORGANIZATION} on \
                         requests per min (RPM): Limit {rpm}, Used {rpm}, Requested 1. Please \
                         try again in {}. Visit https://platform.openai.com/account/rate-limits \
                         to learn more.",
                        go_duration(retry_after),
                        rpm = limits.rpm
                    );
                    state.stats.rate_limited += 1;
                    state.rejections.push(Rejection {
                        at: now,
                        tokens: charge,
                        kind: RejectionKind::Storm,
                        retry_after: Some(retry_after),
                    });
                    let mut headers = limit_headers(state, limits);
                    for (name, value) in headers.iter_mut() {
                        if name == "x-ratelimit-remaining-requests" {
                            *value = "0".to_owned();
                        } else if name == "x-ratelimit-reset-requests" {
                            *value = go_duration(retry_after);
                        }
                    }
                    push_retry_after(&mut headers, retry_ms);
                    let error = HttpError {
                        status: 429,
                        headers,
                        body: error_body(&message, "requests", Some("rate_limit_exceeded")),
                    };
                    return Some(Decision::fail(error, Duration::ZERO));
                }
                Fault::InsufficientQuota => {
                    state.stats.faults += 1;
                    let error = HttpError {
                        status: 429,
                        headers: Vec::new(),
                        body: error_body(
                            "You exceeded your current quota, please check your plan and billing \
                             details. For more information on this error, read the docs: \
                             https://platform.openai.com/docs/guides/error-codes/api-errors.",
                            "insufficient_quota",
                            Some("insufficient_quota"),
                        ),
                    };
                    return Some(Decision::fail(error, Duration::ZERO));
                }
                Fault::Status { code, times } if *times > 0 => {
                    *times -= 1;
                    let code = *code;
                    state.stats.faults += 1;
                    let body = match code {
                        529 => json!({
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"}
                        })
                        .to_string(),
                        503 => error_body(
                            "The engine is currently overloaded, please try again later.",
                            "server_error",
                            None,
                        ),
                        _ => error_body(
                            "The server had an error while processing your request. Sorry about \
                             that!",
                            "server_error",
                            None,
                        ),
                    };
                    let error = HttpError {
                        status: code,
                        headers: Vec::new(),
                        body,
                    };
                    return Some(Decision::fail(error, Duration::ZERO));
                }
                Fault::Timeout { after, times } if *times > 0 => {
                    *times -= 1;
                    let after = *after;
                    state.stats.faults += 1;
                    let error = HttpError {
                        status: 408,
                        headers: Vec::new(),
                        body: error_body("Request timed out.", "timeout", Some("timeout")),
                    };
                    return Some(Decision::fail(error, after));
                }
                Fault::Status { .. } | Fault::Timeout { .. } => {}
            }
        }
        None
    }

    fn respond(
        &self,
        state: &mut State,
        now: Instant,
        model: &str,
        work: &Work,
        charge: u64,
    ) -> MockResponse {
        let id = state.next_id;
        state.next_id += 1;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (prompt_tokens, completion_tokens, body) = match work {
            Work::Chat {
                prompt_tokens,
                max_tokens,
                n,
            } => {
                let max = max_tokens.unwrap_or(state.config.default_max_tokens);
                let per_choice = state.config.completion.per_choice(max);
                let completion = per_choice.saturating_mul(u64::from(*n));
                let finish = if per_choice >= max { "length" } else { "stop" };
                let choices: Vec<Value> = (0..*n)
                    .map(|index| {
                        json!({
                            "index": index,
                            "message": {
                                "role": "assistant",
                                "content": format!("Mock reply {index} ({per_choice} tokens)."),
                                "refusal": null
                            },
                            "logprobs": null,
                            "finish_reason": finish
                        })
                    })
                    .collect();
                let body = json!({
                    "id": format!("chatcmpl-mock-{id}"),
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": choices,
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion,
                        "total_tokens": prompt_tokens.saturating_add(completion)
                    },
                    "service_tier": "default",
                    "system_fingerprint": "fp_mock"
                });
                (*prompt_tokens, completion, body)
            }
            Work::Embeddings { inputs, dimensions } => {
                let prompt: u64 = inputs.iter().fold(0, |s, t| s.saturating_add(*t));
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(index, tokens)| {
                        json!({
                            "object": "embedding",
                            "index": index,
                            "embedding": fake_embedding(index as u64, *tokens, *dimensions)
                        })
                    })
                    .collect();
                let body = json!({
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": prompt, "total_tokens": prompt}
                });
                (prompt, 0, body)
            }
        };
        state.stats.admitted += 1;
        state.stats.admitted_tokens = state.stats.admitted_tokens.saturating_add(charge);
        state.stats.prompt_tokens = state.stats.prompt_tokens.saturating_add(prompt_tokens);
        state.stats.completion_tokens = state
            .stats
            .completion_tokens
            .saturating_add(completion_tokens);
        let mut headers = limit_headers(state, self.inner.limits);
        headers.push(("x-request-id".to_owned(), format!("req_mock_{id}")));
        MockResponse {
            model: model.to_owned(),
            prompt_tokens,
            completion_tokens,
            charged_tokens: charge,
            admitted_at: now,
            headers,
            body,
        }
    }

    /// Every admission so far, in admission order.
    pub fn admissions(&self) -> Vec<Admission> {
        self.state().admissions.clone()
    }

    /// Every rate-limit 429 so far (over the limit, too large, storm), in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.state().rejections.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> MockStats {
        let mut stats = self.state().stats;
        stats.elapsed = Instant::now().saturating_duration_since(self.inner.created);
        stats
    }

    /// [`MockLimits::check`] of this provider's admissions against its own limits.
    pub fn check_within_limits(&self) -> Result<(), LimitViolation> {
        self.inner.limits.check(&self.state().admissions)
    }

    /// Panics with the violation if [`MockProvider::check_within_limits`] finds one.
    #[track_caller]
    pub fn assert_within_limits(&self) {
        if let Err(violation) = self.check_within_limits() {
            panic!("mock provider: {violation}");
        }
    }
}

fn limit_headers(state: &State, limits: MockLimits) -> Vec<(String, String)> {
    vec![
        (
            "x-ratelimit-limit-requests".to_owned(),
            limits.rpm.to_string(),
        ),
        (
            "x-ratelimit-limit-tokens".to_owned(),
            limits.tpm.to_string(),
        ),
        (
            "x-ratelimit-remaining-requests".to_owned(),
            state.requests.remaining().to_string(),
        ),
        (
            "x-ratelimit-remaining-tokens".to_owned(),
            state.tokens.remaining().to_string(),
        ),
        (
            "x-ratelimit-reset-requests".to_owned(),
            go_duration(state.requests.reset()),
        ),
        (
            "x-ratelimit-reset-tokens".to_owned(),
            go_duration(state.tokens.reset()),
        ),
    ]
}

fn push_retry_after(headers: &mut Vec<(String, String)>, retry_ms: u64) {
    headers.push(("retry-after-ms".to_owned(), retry_ms.to_string()));
    headers.push((
        "retry-after".to_owned(),
        retry_ms.div_ceil(1000).to_string(),
    ));
}

/// OpenAI's error envelope.
fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

pub(crate) fn invalid_request(message: impl Into<String>, param: Option<&str>) -> HttpError {
    let body = json!({"error": {
        "message": message.into(),
        "type": "invalid_request_error",
        "param": param,
        "code": null
    }});
    HttpError {
        status: 400,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A deterministic unit-ish vector, different per input.
fn fake_embedding(index: u64, tokens: u64, dimensions: usize) -> Vec<f64> {
    let mut x = index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(tokens)
        .wrapping_add(1);
    (0..dimensions)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2001) as f64 - 1000.0) / 1000.0
        })
        .collect()
}

fn model_of(request: &Value) -> Result<String, HttpError> {
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        _ => Err(invalid_request(
            "you must provide a model parameter",
            Some("model"),
        )),
    }
}

fn optional_u64(request: &Value, key: &str) -> Result<Option<u64>, HttpError> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            invalid_request(
                format!("Invalid '{key}': expected a non-negative integer."),
                Some(key),
            )
        }),
    }
}

/// The text of a message's `content`: a string, an array of parts (the text parts joined), or
/// null (tool calls).
fn content_text(content: Option<&Value>) -> Result<String, HttpError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")),
        Some(_) => Err(invalid_request(
            "Invalid 'messages[].content': expected a string or an array of content parts.",
            Some("messages"),
        )),
    }
}

fn parse_chat(request: &Value) -> Result<(String, Work), HttpError> {
    if !request.is_object() {
        return Err(invalid_request(
            "The request body must be a JSON object.",
            None,
        ));
    }
    let model = model_of(request)?;
    let Some(Value::Array(raw_messages)) = request.get("messages") else {
        return Err(invalid_request(
            "Missing required parameter: 'messages'.",
            Some("messages"),
        ));
    };
    if raw_messages.is_empty() {
        return Err(invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            Some("messages"),
        ));
    }
    let mut messages = Vec::with_capacity(raw_messages.len());
    for raw in raw_messages {
        let Some(role) = raw.get("role").and_then(Value::as_str) else {
            return Err(invalid_request(
                "Missing required parameter: 'messages[].role'.",
                Some("messages"),
            ));
        };
        let mut message = ChatMessage::new(role, content_text(raw.get("content"))?);
        if let Some(name) = raw.get("name").and_then(Value::as_str) {
            message = message.with_name(name);
        }
        messages.push(message);
    }
    let max_tokens = match optional_u64(request, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => optional_u64(request, "max_tokens")?,
    };
    let n = match optional_u64(request, "n")? {
        None => 1,
        Some(n @ 1..=128) => n as u32,
        Some(_) => {
            return Err(invalid_request(
                "Invalid 'n': expected an integer between 1 and 128.",
                Some("n"),
            ))
        }
    };
    let prompt_tokens = count_chat(encoding_for_model(&model), &messages);
    Ok((
        model,
        Work::Chat {
            prompt_tokens,
            max_tokens,
            n,
        },
    ))
}

fn parse_embeddings(request: &Value) -> Result<(String, Work), HttpError> {
    if !request.is_object() {
        return Err(invalid_request(
            "The request body must be a JSON object.",
            None,
        ));
    }
    let model = model_of(request)?;
    let encoding = encoding_for_model(&model);
    let bad_input = || {
        invalid_request(
            "Invalid 'input': expected a non-empty string, array of strings, array of tokens, \
             or array of token arrays.",
            Some("input"),
        )
    };
    let token_array = |items: &[Value]| -> Option<u64> {
        items
            .iter()
            .all(|v| v.as_u64().is_some())
            .then_some(items.len() as u64)
    };
    let inputs: Vec<u64> = match request.get("input") {
        Some(Value::String(text)) if !text.is_empty() => vec![count_tokens(encoding, text)],
        Some(Value::Array(items)) if !items.is_empty() => {
            if let Some(tokens) = token_array(items) {
                vec![tokens]
            } else {
                let mut inputs = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(text) if !text.is_empty() => {
                            inputs.push(count_tokens(encoding, text))
                        }
                        Value::Array(tokens) if !tokens.is_empty() => {
                            inputs.push(token_array(tokens).ok_or_else(bad_input)?)
                        }
                        _ => return Err(bad_input()),
                    }
                }
                inputs
            }
        }
        _ => return Err(bad_input()),
    };
    let dimensions = match optional_u64(request, "dimensions")? {
        None => 8,
        Some(d @ 1..=4096) => d as usize,
        Some(_) => {
            return Err(invalid_request(
                "Invalid 'dimensions': expected an integer between 1 and 4096.",
                Some("dimensions"),
            ))
        }
    };
    Ok((model, Work::Embeddings { inputs, dimensions }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(go_duration(ms(20)), "20ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(46_001)), "46.001s");
        assert_eq!(go_duration(ms(60_000)), "1m0s");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(5_400_000)), "1h30m0s");
        assert_eq!(go_duration(ms(3_661_010)), "1h1m1.01s");
        for d in [20, 999, 1000, 46_001, 360_000, 5_400_000, 3_661_010] {
            assert_eq!(
                crate::http::parse_go_duration(&go_duration(ms(d))),
                Some(ms(d))
            );
        }
    }

    #[test]
    fn bucket_math_is_exact() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(7_000, t0);
        bucket.take(7_000);
        assert_eq!(bucket.remaining(), 0);
        assert_eq!(bucket.reset(), Duration::from_secs(60));
        // One token takes 60 s / 7000 = 8_571_428.57.. ns.
        assert_eq!(bucket.wait_for(1), Duration::from_nanos(8_571_429));
        bucket.refill(t0 + Duration::from_nanos(8_571_428));
        assert_eq!(bucket.remaining(), 0);
        assert_eq!(bucket.wait_for(1), Duration::from_nanos(1));
        bucket.refill(t0 + Duration::from_nanos(8_571_429));
        assert_eq!(bucket.remaining(), 1);
        assert!(bucket.wait_for(1).is_zero());
        bucket.take_saturating(10);
        assert_eq!(bucket.debt, bucket.full());
        bucket.refill(t0 + Duration::from_secs(3600));
        assert_eq!(bucket.debt, 0);
        assert_eq!(bucket.remaining(), 7_000);
    }

    #[test]
    fn checker_finds_the_worst_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let limits = MockLimits::new(1_000, 600);
        // 300 + 300 at 0 s, then 40 at 3 s: 640 > 600 + 30.
        let admissions = [
            Admission::new(t0 + s(3), 40),
            Admission::new(t0, 300),
            Admission::new(t0, 300),
        ];
        let violation = limits.check(&admissions).unwrap_err();
        assert_eq!(violation.dimension, Dimension::TokensPerMinute);
        assert_eq!((violation.from, violation.to), (t0, t0 + s(3)));
        assert_eq!((violation.admitted, violation.allowed), (640, 630));
        assert!(violation.to_string().contains("640 tokens"));
        // Exactly at the bound passes.
        let exact = [Admission::new(t0, 600), Admission::new(t0 + s(3), 30)];
        assert!(limits.check(&exact).is_ok());
        assert!(limits.check(&[]).is_ok());
    }

    #[test]
    fn chat_json_parsing() {
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello!"}], "name": "ann"}
            ],
            "max_completion_tokens": 50,
            "max_tokens": 999,
            "n": 2
        });
        let (model, work) = parse_chat(&body).unwrap();
        assert_eq!(model, "gpt-4o-mini");
        let expected = count_chat(
            Encoding::O200kBase,
            &[
                ChatMessage::system("Be brief."),
                ChatMessage::user("Hello!").with_name("ann"),
            ],
        );
        match work {
            Work::Chat {
                prompt_tokens,
                max_tokens,
                n,
            } => {
                assert_eq!(prompt_tokens, expected);
                assert_eq!(max_tokens, Some(50));
                assert_eq!(n, 2);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            json!([]),
            json!({"messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m"}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
        ] {
            let err = parse_chat(&bad).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
            assert!(err.body.contains("invalid_request_error"));
        }
    }

    #[test]
    fn embeddings_json_parsing() {
        let enc = Encoding::Cl100kBase;
        let (_, work) =
            parse_embeddings(&json!({"model": "text-embedding-3-small", "input": "hello world"}))
                .unwrap();
        assert!(
            matches!(work, Work::Embeddings { ref inputs, dimensions: 8 } if inputs == &[count_tokens(enc, "hello world")])
        );
        let (_, work) = parse_embeddings(&json!({
            "model": "text-embedding-3-small", "input": ["a b", [1, 2, 3]], "dimensions": 4
        }))
        .unwrap();
        assert!(
            matches!(work, Work::Embeddings { ref inputs, dimensions: 4 } if inputs == &[count_tokens(enc, "a b"), 3])
        );
        let (_, work) =
            parse_embeddings(&json!({"model": "text-embedding-3-small", "input": [5, 6]})).unwrap();
        assert!(matches!(work, Work::Embeddings { ref inputs, .. } if inputs == &[2]));
        for bad in [
            json!({"model": "m"}),
            json!({"model": "m", "input": ""}),
            json!({"model": "m", "input": []}),
            json!({"model": "m", "input": [1, "x"]}),
            json!({"model": "m", "input": "x", "dimensions": 0}),
            json!({"input": "x"}),
        ] {
            assert_eq!(parse_embeddings(&bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
