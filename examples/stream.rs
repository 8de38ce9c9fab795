//! 100 streamed chat completions against the bundled mock server, with a progress bar of the
//! tokens received: `cargo run --example stream --features mock-server,reqwest`.
//!
//! Each call is `#[rate_limited(model = "gpt-4o-mini", stream)]`: the reservation and the
//! in-flight slot (at most 10 streams at once here) are held until the stream ends, and settled
//! from the usage chunk the request asks for (`stream_options.include_usage`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use ratelimited::testing::{MockLimits, MockProvider, MockServer};
use ratelimited::{rate_limited, stream::RateLimitedStream, Registry};
use serde_json::{json, Value};

#[allow(dead_code)]
#[path = "common/api_error.rs"]
mod api_error;
use api_error::ApiError;
#[path = "common/sse.rs"]
mod sse;

const CALLS: u64 = 100;
const MAX_TOKENS: u64 = 200;

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn chat_stream(
    client: &reqwest::Client,
    url: &str,
    request: &Value,
) -> Result<RateLimitedStream<sse::JsonEvents>, ApiError> {
    sse::send(client, url, request).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Registry::with_env([("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "10")]);
    let provider = MockProvider::new(MockLimits::new(500, 200_000)).completion_fraction(0.6);
    let server = MockServer::serve(provider).await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = server.url("/v1/chat/completions");

    // 60 % of max_tokens per call: what the bar fills to.
    let expected = CALLS * MAX_TOKENS * 6 / 10;
    let bar = ProgressBar::new(expected);
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} tokens received {msg}",
    )?);
    let received = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let calls = (0..CALLS).map(|i| {
        let (client, url, bar, received) = (&client, &url, &bar, Arc::clone(&received));
        async move {
            let request = json!({
                "model": "gpt-4o-mini",
                "stream": true,
                "max_tokens": MAX_TOKENS,
                "messages": [{"role": "user", "content": format!("Tell me story number {i}.")}]
            });
            let mut stream = chat_stream(client, url, &request).await?;
            while let Some(event) = stream.next().await {
                let event = event?;
                let text = event
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str);
                let tokens = text.map_or(0, |t| t.split_whitespace().count() as u64);
                received.fetch_add(tokens, Ordering::Relaxed);
                bar.inc(tokens);
            }
            Ok::<_, ApiError>(stream.usage())
        }
    });
    let results = registry.bind(futures_util::future::join_all(calls)).await;
    bar.finish_with_message("done");

    let settled = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let failed = results.iter().filter(|r| r.is_err()).count();
    println!(
        "{CALLS} streams in {:.2?}: {} tokens received, {settled} settled from their usage \
         chunk, {failed} failed, {} 429s from the server",
        started.elapsed(),
        received.load(Ordering::Relaxed),
        server.provider().rejections().len(),
    );
    server.provider().assert_within_limits();
    Ok(())
}
