//! Metrics through the [`metrics`] facade (feature `metrics`), so any exporter works
//! (Prometheus, OpenTelemetry, StatsD): the OpenTelemetry GenAI client metrics by their
//! semantic-convention names, and the limiter's own under `ratelimited.`.
//!
//! | name | kind, unit | labels | what |
//! |---|---|---|---|
//! | `gen_ai.client.token.usage` | histogram, `{token}` | `gen_ai.token.type` (`input`, `output`), `gen_ai.request.model`, `gen_ai.provider.name`, `gen_ai.operation.name` | the tokens a successful answer reported, per answer |
//! | `gen_ai.client.operation.duration` | histogram, `s` | the model, provider and operation; `error.type` on a failed attempt | from an attempt's admission to its answer |
//! | `ratelimited.wait.duration` | histogram, `s` | `family`, `provider` | how long an attempt waited for the limiter |
//! | `ratelimited.admissions` | counter | `family`, `provider` | attempts the limiter admitted |
//! | `ratelimited.refusals` | counter | `family`, `provider`, `reason` (`circuit_open`, `budget`, `too_large`, `backend`, `other`) | attempts refused before anything was sent |
//! | `ratelimited.rate_limited` | counter | `family`, `provider` | 429s the server answered |
//! | `ratelimited.retries` | counter | `family`, `provider`, `reason` (`rate_limited`, `transient`) | attempts retried |
//! | `ratelimited.tokens.charged` | counter | `family`, `provider` | tokens the limiter charged after settling (what counts toward the limits: cache reads left out where the provider leaves them out) |
//! | `ratelimited.in_flight` | gauge | `family`, `provider` | attempts admitted and not answered |
//! | `ratelimited.waiting` | gauge | `family`, `provider` | attempts waiting for the limiter |
//! | `ratelimited.breaker.state` | gauge | `family`, `provider` | 0 closed, 1 half-open, 2 open |
//! | `ratelimited.budget.left.tokens`, `ratelimited.budget.left.usd` | gauge | `family`, `provider` | what the family's budget has left (set when it has one) |
//! | `ratelimited.estimate.ratio` | gauge | `family`, `provider` | the prompt estimates over the input tokens the server reported, over the run |
//!
//! `gen_ai.request.model` is the limit family (the model id without its date snapshot);
//! `gen_ai.provider.name` takes the convention's values (`openai`, `azure.ai.openai`,
//! `anthropic`, `gcp.gemini`); `gen_ai.operation.name` is `embeddings` for an embedding model
//! and `chat` otherwise (the limiter does not see the request's endpoint).

use std::time::Duration;

use metrics::{counter, gauge, histogram, Unit};

use crate::answers::classify::Verdict;
use crate::family::breaker::BreakerState;
use crate::family::spend::BudgetLeft;
use crate::model::limit_family::LimitFamily;
use crate::model::provider::Provider;
use crate::units::cost::Usage;
use crate::units::error::Error;

/// The OpenTelemetry name of a provider (`gen_ai.provider.name`).
fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "openai",
        Provider::Azure => "azure.ai.openai",
        Provider::Anthropic => "anthropic",
        Provider::Gemini => "gcp.gemini",
    }
}

fn operation_name(family: &LimitFamily) -> &'static str {
    if family.id.contains("embedding") {
        "embeddings"
    } else {
        "chat"
    }
}

/// The labels of the GenAI metrics.
fn gen_ai(family: &LimitFamily) -> [(&'static str, String); 3] {
    [
        ("gen_ai.request.model", family.id.clone()),
        (
            "gen_ai.provider.name",
            provider_name(family.provider).to_owned(),
        ),
        ("gen_ai.operation.name", operation_name(family).to_owned()),
    ]
}

/// The labels of the limiter's metrics.
fn own(family: &LimitFamily) -> [(&'static str, String); 2] {
    [
        ("family", family.id.clone()),
        ("provider", family.provider.as_str().to_owned()),
    ]
}

/// Describes every metric to the installed recorder (units and help texts), once per process.
fn describe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        metrics::describe_histogram!(
            "gen_ai.client.token.usage",
            Unit::Count,
            "Number of input and output tokens used, per answer"
        );
        metrics::describe_histogram!(
            "gen_ai.client.operation.duration",
            Unit::Seconds,
            "GenAI operation duration, from admission to answer"
        );
        metrics::describe_histogram!(
            "ratelimited.wait.duration",
            Unit::Seconds,
            "Time an attempt waited for the rate limiter"
        );
        metrics::describe_counter!("ratelimited.admissions", "Attempts admitted by the limiter");
        metrics::describe_counter!(
            "ratelimited.refusals",
            "Attempts refused before sending, by reason"
        );
        metrics::describe_counter!("ratelimited.rate_limited", "429 answers from the server");
        metrics::describe_counter!("ratelimited.retries", "Attempts retried, by reason");
        metrics::describe_counter!(
            "ratelimited.tokens.charged",
            "Tokens charged on the limits after settling"
        );
        metrics::describe_gauge!(
            "ratelimited.in_flight",
            "Attempts admitted and not answered"
        );
        metrics::describe_gauge!("ratelimited.waiting", "Attempts waiting for the limiter");
        metrics::describe_gauge!(
            "ratelimited.breaker.state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open"
        );
        metrics::describe_gauge!(
            "ratelimited.budget.left.tokens",
            "Tokens the budget has left"
        );
        metrics::describe_gauge!(
            "ratelimited.budget.left.usd",
            Unit::Count,
            "US dollars the budget has left"
        );
        metrics::describe_gauge!(
            "ratelimited.estimate.ratio",
            "Prompt estimates over the input tokens the server reported"
        );
    });
}

/// The gauges of a family, after any change of its counts.
pub(crate) struct Gauges {
    pub(crate) in_flight: u64,
    pub(crate) waiting: u64,
    pub(crate) breaker: BreakerState,
    pub(crate) budget_left: BudgetLeft,
    /// Estimated and reported input tokens, over the answers that reported usage.
    pub(crate) estimate: (u64, u64),
}

pub(crate) fn gauges(family: &LimitFamily, g: &Gauges) {
    describe();
    let labels = own(family);
    gauge!("ratelimited.in_flight", &labels).set(g.in_flight as f64);
    gauge!("ratelimited.waiting", &labels).set(g.waiting as f64);
    let breaker = match g.breaker {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    gauge!("ratelimited.breaker.state", &labels).set(breaker);
    if let Some(tokens) = g.budget_left.tokens {
        gauge!("ratelimited.budget.left.tokens", &labels).set(tokens as f64);
    }
    if let Some(usd) = g.budget_left.usd {
        gauge!("ratelimited.budget.left.usd", &labels).set(usd);
    }
    let (estimated, reported) = g.estimate;
    if reported > 0 {
        gauge!("ratelimited.estimate.ratio", &labels).set(estimated as f64 / reported as f64);
    }
}

/// An attempt was refused before anything was sent.
pub(crate) fn refused(family: &LimitFamily, error: &Error) {
    describe();
    let reason = match error {
        Error::CircuitOpen { .. } => "circuit_open",
        Error::BudgetExhausted { .. } => "budget",
        Error::RequestTooLarge { .. } => "too_large",
        Error::BackendUnavailable { .. } => "backend",
        _ => "other",
    };
    let [family_label, provider] = own(family);
    counter!(
        "ratelimited.refusals",
        &[family_label, provider, ("reason", reason.to_owned())]
    )
    .increment(1);
}

/// An attempt was admitted after `waited`.
pub(crate) fn admitted(family: &LimitFamily, waited: Duration) {
    describe();
    let labels = own(family);
    histogram!("ratelimited.wait.duration", &labels).record(waited.as_secs_f64());
    counter!("ratelimited.admissions", &labels).increment(1);
}

/// An attempt answered successfully after `took`: `charged` tokens settled on the limits,
/// `reported` the usage the answer gave.
pub(crate) fn succeeded(
    family: &LimitFamily,
    took: Duration,
    charged: u64,
    reported: Option<Usage>,
) {
    describe();
    let labels = gen_ai(family);
    histogram!("gen_ai.client.operation.duration", &labels).record(took.as_secs_f64());
    if let Some(usage) = reported {
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
        ] {
            let [model, provider, operation] = labels.clone();
            let labels = [
                model,
                provider,
                operation,
                ("gen_ai.token.type", kind.to_owned()),
            ];
            histogram!("gen_ai.client.token.usage", &labels).record(tokens as f64);
        }
    }
    counter!("ratelimited.tokens.charged", &own(family)).increment(charged);
}

/// An attempt failed after `took` with `verdict`, and was retried or not.
pub(crate) fn failed(family: &LimitFamily, took: Duration, verdict: &Verdict, retried: bool) {
    describe();
    let error_type = match verdict {
        Verdict::RateLimited { .. } => "rate_limited",
        Verdict::QuotaExhausted { .. } => "quota_exhausted",
        Verdict::RequestTooLarge { .. } => "request_too_large",
        Verdict::Transient { .. } => "transient",
        Verdict::Fatal => "_OTHER",
    };
    let [model, provider, operation] = gen_ai(family);
    let labels = [
        model,
        provider,
        operation,
        ("error.type", error_type.to_owned()),
    ];
    histogram!("gen_ai.client.operation.duration", &labels).record(took.as_secs_f64());
    let own = own(family);
    if matches!(verdict, Verdict::RateLimited { .. }) {
        counter!("ratelimited.rate_limited", &own).increment(1);
    }
    if retried {
        let reason = if matches!(verdict, Verdict::RateLimited { .. }) {
            "rate_limited"
        } else {
            "transient"
        };
        let [family_label, provider] = own;
        counter!(
            "ratelimited.retries",
            &[family_label, provider, ("reason", reason.to_owned())]
        )
        .increment(1);
    }
}
