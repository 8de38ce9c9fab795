//! Metrics through the `metrics` facade (feature `metrics`), read back with `metrics-util`'s
//! debugging recorder after one run in paused time: the OpenTelemetry GenAI client metrics by
//! their names, units and labels, and the limiter's own.

use std::time::Duration;

use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use ratelimited::rate_limited;
use ratelimited::testing::{
    fresh_registry_with_env, spawn_scoped, MockLimits, MockProvider, MockRequest, MockResponse,
};

mod common;
use common::ApiError;

#[rate_limited(
    model = "metrics-model",
    provider = "openai",
    tokens = 600,
    max_tokens = 10
)]
async fn ask(provider: &MockProvider) -> Result<MockResponse, ApiError> {
    let request = MockRequest::new("metrics-model", 600).max_tokens(10);
    provider.chat(&request).await.map_err(ApiError::Http)
}

type Entry = (
    CompositeKey,
    Option<Unit>,
    Option<metrics::SharedString>,
    DebugValue,
);

/// The entries named `name` whose labels include every one of `labels`.
fn find<'a>(entries: &'a [Entry], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|(key, ..)| key.key().name() == name)
        .filter(|(key, ..)| {
            labels.iter().all(|(k, v)| {
                key.key()
                    .labels()
                    .any(|label| label.key() == *k && label.value() == *v)
            })
        })
        .collect()
}

fn histogram(entry: &Entry) -> Vec<f64> {
    match &entry.3 {
        DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{:?} is not a histogram: {other:?}", entry.0),
    }
}

fn counter(entries: &[Entry], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(entries, name, labels).as_slice() {
        [(_, _, _, DebugValue::Counter(n))] => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

fn gauge(entries: &[Entry], name: &str) -> f64 {
    match find(entries, name, &[("family", "metrics-model")]).as_slice() {
        [(_, _, _, DebugValue::Gauge(v))] => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    }
}

/// Two calls of 600 prompt tokens sent at once to a server that admits 1,000 tokens a minute
/// (the family is configured with 6,000): one is answered, the other draws a 429 and is
/// retried after the server's wait. Every metric of the run, checked by name, unit, labels and
/// value.
#[test]
fn one_run_reports_the_gen_ai_client_metrics_and_the_limiters_own() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let _registry = fresh_registry_with_env([
                ("RATE_LIMITED_METRICS_MODEL_TPM", "6000"),
                ("RATE_LIMITED_HEADROOM", "1"),
            ]);
            let provider =
                MockProvider::new(MockLimits::new(100, 1_000)).latency(Duration::from_secs(1));
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    let provider = provider.clone();
                    spawn_scoped(async move { ask(&provider).await.unwrap() })
                })
                .collect();
            for call in calls {
                call.await.unwrap();
            }
            assert_eq!(
                provider.stats().rate_limited,
                1,
                "the run this test describes"
            );
        });
    });
    let entries = snapshotter.snapshot().into_vec();
    let model = [
        ("gen_ai.request.model", "metrics-model"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.operation.name", "chat"),
    ];

    // gen_ai.client.token.usage: a histogram in tokens, per token type, one value per answer.
    let input = find(
        &entries,
        "gen_ai.client.token.usage",
        &[model[0], model[1], model[2], ("gen_ai.token.type", "input")],
    );
    assert_eq!(input.len(), 1);
    assert_eq!(input[0].0.kind(), MetricKind::Histogram);
    assert_eq!(input[0].1, Some(Unit::Count));
    assert_eq!(histogram(input[0]), vec![600.0, 600.0]);
    let output = find(
        &entries,
        "gen_ai.client.token.usage",
        &[("gen_ai.token.type", "output")],
    );
    assert_eq!(histogram(output[0]).len(), 2);

    // gen_ai.client.operation.duration: seconds; the failed attempt carries error.type.
    let ok = find(&entries, "gen_ai.client.operation.duration", &model)
        .into_iter()
        .filter(|(key, ..)| !key.key().labels().any(|l| l.key() == "error.type"))
        .collect::<Vec<_>>();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].1, Some(Unit::Seconds));
    assert_eq!(
        histogram(ok[0]),
        vec![1.0, 1.0],
        "each answer took the mock's 1 s"
    );
    let failed = find(
        &entries,
        "gen_ai.client.operation.duration",
        &[("error.type", "rate_limited")],
    );
    assert_eq!(histogram(failed[0]), vec![0.0], "the mock refuses at once");

    // The limiter's own.
    let family = [("family", "metrics-model"), ("provider", "openai")];
    assert_eq!(counter(&entries, "ratelimited.admissions", &family), 3);
    assert_eq!(counter(&entries, "ratelimited.rate_limited", &family), 1);
    assert_eq!(
        counter(
            &entries,
            "ratelimited.retries",
            &[family[0], ("reason", "rate_limited")]
        ),
        1
    );
    assert_eq!(
        counter(&entries, "ratelimited.tokens.charged", &family),
        2 * 610,
        "each answer settled to its 600 prompt tokens and 10 completion tokens"
    );
    let waits = find(&entries, "ratelimited.wait.duration", &family);
    assert_eq!(waits[0].1, Some(Unit::Seconds));
    let waits = histogram(waits[0]);
    assert_eq!(waits.len(), 3);
    assert_eq!(
        waits[..2],
        [0.0, 0.0],
        "both first attempts admitted at once"
    );
    assert!(
        waits[2] > 0.0,
        "the retry waited for the server's retry-after"
    );
    assert_eq!(gauge(&entries, "ratelimited.in_flight"), 0.0);
    assert_eq!(gauge(&entries, "ratelimited.waiting"), 0.0);
    assert_eq!(gauge(&entries, "ratelimited.breaker.state"), 0.0);
    assert_eq!(gauge(&entries, "ratelimited.estimate.ratio"), 1.0);
}
