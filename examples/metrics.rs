//! The metrics of a run, exported in Prometheus text format.
//!
//! ```sh
//! cargo run --example metrics --features metrics
//! ```
//!
//! Installs `metrics-exporter-prometheus` as the process's recorder (no HTTP listener: the
//! scrape is rendered in-process), sends 60 annotated calls to the in-process mock provider in
//! paused time (the family configured for 40,000 TPM, the server admitting 30,000: the family
//! follows the server's headers, so calls wait on the limiter rather than draw 429s), then
//! prints the scrape: the OpenTelemetry GenAI client metrics (`gen_ai_client_token_usage`,
//! `gen_ai_client_operation_duration`) and the limiter's own (`ratelimited_*`). The exporter
//! renders histograms as summaries and dots as underscores. In a service, install the exporter
//! with its HTTP listener (or any other `metrics` exporter) and turn on the `metrics` feature:
//! nothing else changes.

use std::time::Duration;

use api_error::ApiError;
use metrics_exporter_prometheus::PrometheusBuilder;
use ratelimited::rate_limited;
use ratelimited::testing::{
    fresh_registry_with_env, spawn_scoped, MockLimits, MockProvider, MockRequest, MockResponse,
};

#[path = "common/api_error.rs"]
mod api_error;

const CALLS: u64 = 60;

#[rate_limited(model = "gpt-4o-mini", tokens = prompt, max_tokens = 200)]
async fn ask(provider: &MockProvider, prompt: u64) -> Result<MockResponse, ApiError> {
    let request = MockRequest::new("gpt-4o-mini", prompt).max_tokens(200);
    provider.chat(&request).await.map_err(ApiError::Http)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");
    // Configured for 40,000 TPM; the server admits 30,000 (its headers say so, and the
    // family follows them from the first answers on).
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_TPM", "40000")]);
    let provider =
        MockProvider::new(MockLimits::new(500, 30_000)).latency(Duration::from_millis(800));
    let started = tokio::time::Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let provider = provider.clone();
            spawn_scoped(async move { ask(&provider, 400 + (i * 37) % 800).await })
        })
        .collect();
    let mut failed = 0;
    for call in calls {
        if call.await.expect("the call's task").is_err() {
            failed += 1;
        }
    }
    let stats = provider.stats();
    println!(
        "{CALLS} calls in {:.1} s (paused time): {failed} failed, {} 429s from the server\n",
        started.elapsed().as_secs_f64(),
        stats.rate_limited
    );
    println!("# the scrape at the end of the run");
    print!("{}", prometheus.render());
}
