//! The main job: 300 concurrent chat calls through `#[rate_limited]`, with no 429s.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! By default it starts the bundled OpenAI-compatible mock server on 127.0.0.1 (real HTTP, real
//! token buckets, real 429s and `x-ratelimit-*` headers) with gpt-4o-mini tier-1 limits scaled
//! down so the run takes under a minute (about 50 s), fires 300 annotated calls at once
//! through `reqwest`, and reports what happened.
//!
//! With `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) set, the same calls go to that endpoint
//! instead, with limits from the tier tables and `RATE_LIMITED_*` variables as usual.
//! `QUICKSTART_CALLS` changes the number of calls.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{ApiError, ChatClient};
use indicatif::{ProgressBar, ProgressStyle};
use ratelimited::testing::{MockLimits, MockProvider, MockServer};
use ratelimited::{http::WithHeaders, rate_limited, ReportUsage};
use serde_json::{json, Value};
use tokio::time::Instant;

mod common;

const MODEL: &str = "gpt-4o-mini";
/// gpt-4o-mini at tier-1 is 500 RPM and 200,000 TPM; the mock keeps the RPM and halves the
/// TPM, so 300 calls (about 160,000 tokens as the server charges them) take about 50 s.
const MOCK_LIMITS: MockLimits = MockLimits::new(500, 100_000);

/// The annotated call: the prompt is estimated from the JSON request (messages, with the chat
/// overhead), `max_tokens` and `n` are read from it, and the usage in the response settles it.
/// `admitted` has no token estimate, so it counts zero; it records when the first attempt ran.
#[rate_limited(model = MODEL)]
async fn ask(
    api: &ChatClient,
    request: &Value,
    admitted: &OnceLock<Instant>,
) -> Result<WithHeaders<Value>, ApiError> {
    admitted.get_or_init(Instant::now);
    api.chat(request).await
}

fn request(i: u64) -> Value {
    // Prompts of varied length: 40 to 400 words.
    let words = 40 + (i * 7_919) % 360;
    let text: String = (0..words)
        .map(|w| ["rate", "limit", "token", "bucket", "model", "request"][((w + i) % 6) as usize])
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": format!("Summarize in one line: {text}")},
        ],
        "max_tokens": 128,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: u64 = std::env::var("QUICKSTART_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let base_url = std::env::var("OPENAI_BASE_URL").ok();
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Keep the server alive for the whole run.
    let (server, base_url, target) = match base_url {
        Some(url) => {
            let url = url.trim_end_matches('/').to_owned();
            let target =
                format!("{url} (limits from the tier tables and RATE_LIMITED_* variables)");
            (None, url, target)
        }
        None => {
            // The limiter must know the mock's limits: set them unless the user already did.
            for (var, value) in [
                ("RATE_LIMITED_GPT_4O_MINI_RPM", MOCK_LIMITS.rpm),
                ("RATE_LIMITED_GPT_4O_MINI_TPM", MOCK_LIMITS.tpm),
            ] {
                if std::env::var_os(var).is_none() {
                    std::env::set_var(var, value.to_string());
                }
            }
            // Completions use 20 % to 100 % of max_tokens, after 300 ms of "generation"; the
            // prompt is charged from its characters at admission, as OpenAI's limiter does.
            let provider = MockProvider::new(MOCK_LIMITS)
                .charge_prompt_by_characters(true)
                .latency(Duration::from_millis(300))
                .completion_with(|max| max * (20 + (max * 7 + 13) % 81) / 100);
            let server = MockServer::serve(provider).await?;
            let url = server.base_url();
            let target = format!(
                "the bundled mock server at {url}, which allows {} requests and {} tokens per \
                 minute (the limiter is given the same limits)",
                MOCK_LIMITS.rpm, MOCK_LIMITS.tpm
            );
            (Some(server), url, target)
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let api = Arc::new(ChatClient::new(
        http,
        &base_url,
        std::env::var("OPENAI_API_KEY").ok(),
    ));

    println!("{calls} calls to {MODEL} at once, sent to {target}");
    let bar = ProgressBar::new(calls).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} calls  {msg}")?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    // Live numbers from the family's stats, refreshed four times a second.
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                if let Some(family) = ratelimited::stats::snapshot().family(MODEL) {
                    bar.set_message(format!(
                        "{} waiting, {} in flight, {} retries",
                        family.waiting,
                        family.in_flight,
                        family.retries.total()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let (api, bar) = (api.clone(), bar.clone());
            tokio::spawn(async move {
                let admitted = OnceLock::new();
                let result = ask(&api, &request(i), &admitted).await;
                bar.inc(1);
                let waited = admitted.get().map(|at| *at - start);
                result.map(|response| (response, waited.unwrap_or_default()))
            })
        })
        .collect();
    let (mut ok, mut failed, mut prompt_tokens, mut completion_tokens) = (0u64, 0u64, 0, 0);
    let (mut waited, mut longest_wait) = (Duration::ZERO, Duration::ZERO);
    for task in tasks {
        match task.await? {
            Ok((response, wait)) => {
                ok += 1;
                waited += wait;
                longest_wait = longest_wait.max(wait);
                if let Some(usage) = response.usage() {
                    prompt_tokens += usage.input_tokens;
                    completion_tokens += usage.output_tokens;
                }
            }
            Err(e) => {
                failed += 1;
                bar.println(format!("call failed: {e}"));
            }
        }
    }
    ticker.abort();
    bar.finish_with_message("done");
    let elapsed = start.elapsed();
    let tokens = prompt_tokens + completion_tokens;
    let responses = api.responses.load(Ordering::Relaxed);
    let rate_limited = api.rate_limited.load(Ordering::Relaxed);
    println!();
    println!("requests      {ok} ok, {failed} failed, of {calls}");
    println!("tokens used   {tokens} ({prompt_tokens} prompt + {completion_tokens} completion)");
    println!(
        "makespan      {:.1} s; callers waited {:.1} s on average, {:.1} s at most",
        elapsed.as_secs_f64(),
        waited.as_secs_f64() / ok.max(1) as f64,
        longest_wait.as_secs_f64()
    );
    let stats = ratelimited::stats::snapshot();
    if let Some(family) = stats.family(MODEL) {
        println!(
            "limiter       {} attempts admitted, {} refused; waits {:.1} s on average, {:.1} s \
             at most",
            family.admitted,
            family.refused,
            family.mean_wait().as_secs_f64(),
            family.max_wait.as_secs_f64()
        );
        if let Some(ratio) = family.estimate_ratio() {
            // Not an error: OpenAI's limiter charges a prompt by its characters (about 4 per
            // token), which on these short words is more than the tokens it bills, and the
            // limiter reserves what the server charges.
            println!(
                "estimate      prompts reserved as OpenAI charges them, by characters: {} \
                 tokens, {:.1} % of the {} prompt tokens the responses report",
                family.estimated_input_tokens,
                100.0 * ratio,
                family.reported_input_tokens
            );
        }
        if let Some(cost) = family.cost_usd {
            println!(
                "cost          ${cost:.4} at {MODEL}'s list price (breaker {})",
                family.breaker
            );
        }
    }
    if let Some(server) = &server {
        let stats = server.provider().stats();
        // A token bucket admits at most a full bucket plus the refill over the run.
        let allowed = MOCK_LIMITS.tpm as f64 * (1.0 + elapsed.as_secs_f64() / 60.0);
        println!(
            "vs the limit  the server charged {} tokens (prompt + max_tokens at admission) in \
             {:.1} s: {:.0} % of the {:.0} that {} TPM allows in that time (headroom {})",
            stats.admitted_tokens,
            elapsed.as_secs_f64(),
            100.0 * stats.admitted_tokens as f64 / allowed,
            allowed,
            MOCK_LIMITS.tpm,
            std::env::var("RATE_LIMITED_HEADROOM").unwrap_or_else(|_| "0.9".into()),
        );
        match server.provider().check_within_limits() {
            Ok(()) if rate_limited == 0 => {
                println!("server check  every request fit the server's buckets, none was refused")
            }
            Ok(()) => println!(
                "server check  the server admitted only what its buckets allowed and refused \
                 {rate_limited} requests with a 429"
            ),
            Err(violation) => println!("server check  VIOLATION: {violation}"),
        }
    }
    let (retries, limiter_429s) = stats.family(MODEL).map_or((0, 0), |family| {
        (family.retries.total(), family.rate_limited)
    });
    println!("retries       {retries} ({responses} HTTP responses for {calls} calls)");
    println!("429s seen     {rate_limited} by the client, {limiter_429s} by the limiter");
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
