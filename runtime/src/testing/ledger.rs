//! What the mock provider keeps as calls arrive: the knobs a test turned, the buckets, the
//! faults still to strike, and the record of every admission and rejection; and how an
//! admitted call's successful answer is written down.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::Bucket;
use super::fault::Fault;
use super::openai_wire::{self, BucketReport};
use super::records::{Admission, MockStats, Rejection};
use super::request::{total_tokens, RequestedWork};
use super::response::MockResponse;

pub(super) type CompletionFn = dyn Fn(u64) -> u64 + Send + Sync;

/// How many tokens a choice completes, given its cap.
#[derive(Clone)]
pub(super) enum CompletionRule {
    Fraction(f64),
    Custom(Arc<CompletionFn>),
}

impl CompletionRule {
    /// Completion tokens of one choice with this cap, never above the cap.
    pub(super) fn per_choice(&self, max_tokens: u64) -> u64 {
        let tokens = match self {
            CompletionRule::Fraction(f) => (max_tokens as f64 * f).ceil() as u64,
            CompletionRule::Custom(f) => f(max_tokens),
        };
        tokens.min(max_tokens)
    }
}

/// The knobs a test turns with the builder methods.
#[derive(Clone)]
pub(super) struct Behaviour {
    pub(super) headers: MockHeaders,
    pub(super) charged_after: bool,
    pub(super) latency: Duration,
    pub(super) completion: CompletionRule,
    pub(super) default_max_tokens: u64,
    pub(super) count_failed_requests: bool,
    pub(super) refund_unused: bool,
    pub(super) charge_by_characters: bool,
    pub(super) prompt_cache: PromptCache,
}

/// The headers the mock's answers carry ([`MockProvider::headers`](super::MockProvider::headers)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MockHeaders {
    /// OpenAI's: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` on every answer, and
    /// `retry-after-ms`, `retry-after` and a "Please try again in .." message on a 429.
    #[default]
    Provider,
    /// An LLM gateway's (LiteLLM's proxy): `x-ratelimit-{limit,remaining}-*` without the
    /// resets, and a 429 whose only hint is the vendor-prefixed `llm_provider-retry-after`
    /// (whole seconds), with no hint in its message.
    Gateway,
}

/// Whether the mock keeps a prompt cache, and whether what it reads from it counts toward its
/// tokens bucket ([`MockProvider::prompt_cache`](super::MockProvider::prompt_cache)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PromptCache {
    /// No cache: every prompt token is reported uncached (the default).
    #[default]
    Off,
    /// OpenAI's rule: a repeated prefix is reported as `cached_tokens`, and still charged
    /// ("caching does not affect rate limits").
    ReadsCounted,
    /// Anthropic's rule on current models: a repeated prefix is reported as read from the
    /// cache and not charged; the first one is reported as a cache write and charged.
    ReadsFree,
}

/// One well-formed call as it reaches the buckets.
pub(super) struct Arrival<'a> {
    pub(super) at: Instant,
    pub(super) model: &'a str,
    /// What admission would take from the tokens bucket.
    pub(super) charge: u64,
    /// Prompt tokens the cache serves (the prefix was seen before).
    pub(super) cache_read: u64,
    /// Prompt tokens the cache stores (the prefix is new).
    pub(super) cache_write: u64,
}

/// Everything that changes as calls arrive, behind one lock.
pub(super) struct Ledger {
    pub(super) behaviour: Behaviour,
    pub(super) requests: Bucket,
    pub(super) tokens: Bucket,
    pub(super) faults: Vec<Fault>,
    pub(super) admissions: Vec<Admission>,
    pub(super) rejections: Vec<Rejection>,
    pub(super) stats: MockStats,
    pub(super) next_id: u64,
    /// The prefixes the prompt cache holds.
    pub(super) cached_prefixes: HashSet<String>,
}

impl Ledger {
    /// The buckets as the `x-ratelimit-*` headers describe them.
    pub(super) fn rate_limit_headers(&self) -> Vec<(String, String)> {
        let mut headers =
            openai_wire::rate_limit_headers(report(&self.requests), report(&self.tokens));
        if self.behaviour.headers == MockHeaders::Gateway {
            headers.retain(|(name, _)| !name.starts_with("x-ratelimit-reset-"));
        }
        headers
    }

    pub(super) fn reject(&mut self, rejection: Rejection) {
        self.stats.rate_limited += 1;
        self.rejections.push(rejection);
    }

    /// A failed request still takes its request from the bucket, as OpenAI counts it, unless
    /// the test turned that off.
    pub(super) fn count_failed_request(&mut self) {
        if self.behaviour.count_failed_requests {
            self.requests.take_saturating(1);
        }
    }
}

pub(super) fn report(bucket: &Bucket) -> BucketReport {
    BucketReport {
        limit: bucket.capacity(),
        remaining: bucket.remaining(),
        reset: bucket.reset(),
    }
}

/// The successful answer to an admitted call, counted in the stats.
pub(super) fn respond(
    ledger: &mut Ledger,
    arrival: &Arrival<'_>,
    work: &RequestedWork,
) -> MockResponse {
    let Arrival {
        at,
        model,
        charge,
        cache_read,
        cache_write,
    } = *arrival;
    let id = ledger.next_id;
    ledger.next_id += 1;
    let (prompt_tokens, completion_tokens, body) = match work {
        RequestedWork::Chat {
            prompt_tokens,
            max_tokens,
            n,
            ..
        } => {
            let max = max_tokens.unwrap_or(ledger.behaviour.default_max_tokens);
            let per_choice = ledger.behaviour.completion.per_choice(max);
            let completion = per_choice.saturating_mul(u64::from(*n));
            let prompt = openai_wire::PromptUsage {
                tokens: *prompt_tokens,
                cache_read,
                cache_write,
            };
            let body = openai_wire::chat_completion_body(
                id,
                model,
                prompt,
                per_choice,
                *n,
                per_choice >= max,
            );
            (*prompt_tokens, completion, body)
        }
        RequestedWork::Embeddings { inputs, dimensions } => {
            let body = openai_wire::embeddings_body(model, inputs, *dimensions);
            (total_tokens(inputs), 0, body)
        }
    };
    let stats = &mut ledger.stats;
    stats.admitted += 1;
    stats.admitted_tokens = stats.admitted_tokens.saturating_add(charge);
    stats.prompt_tokens = stats.prompt_tokens.saturating_add(prompt_tokens);
    stats.completion_tokens = stats.completion_tokens.saturating_add(completion_tokens);
    let mut headers = ledger.rate_limit_headers();
    headers.push(openai_wire::request_id_header(id));
    headers.push(openai_wire::processing_header(ledger.behaviour.latency));
    MockResponse {
        model: model.to_owned(),
        prompt_tokens,
        completion_tokens,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        charged_tokens: charge,
        admitted_at: at,
        headers,
        body,
    }
}
