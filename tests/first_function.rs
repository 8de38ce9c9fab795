//! The README's first function, exactly as it is written there (the test checks that the two
//! agree), against the bundled `MockServer` with the limiter given the server's limits: every
//! call succeeds with no 429, and the limit binds (callers wait) so that is not by luck.
//! Real HTTP on loopback, a few seconds of real time.

use ratelimited::testing::{fresh_registry_with_env, MockLimits, MockServer};
use serde_json::json;

// README: first function, begin
use ratelimited::integrations::reqwest::error_for_status;
use ratelimited::{rate_limited, CallError};
use serde_json::Value;

#[rate_limited(model = "gpt-4o-mini", skip(url))] // `url` is not prompt text: skip it
async fn chat(http: &reqwest::Client, url: &str, request: &Value) -> Result<Value, CallError> {
    let response = http.post(url).json(request).send().await?; // connection errors: retried
    let response = error_for_status(response).await?; // 429: waits as the server says; 5xx: retried
    Ok(response.json().await?) // the body's `usage` settles the reservation
}
// README: first function, end

/// 37 calls of about 1,015 tokens (a short prompt plus `max_tokens` 1,000, which OpenAI charges
/// at admission and keeps) against a bucket of 36,000 (40,000 TPM × the default headroom 0.9):
/// the last ones wait a few seconds for the refill.
const CALLS: usize = 37;

#[tokio::test]
async fn the_readme_first_function_gets_no_429_from_the_mock_server() {
    // The test build of reqwest has no default TLS provider; plain HTTP still wants one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let limits = MockLimits::new(600, 40_000);
    let _registry = fresh_registry_with_env(limits.env_for("gpt-4o-mini"));
    let server = MockServer::start(limits).await.unwrap();
    let url = server.url("/v1/chat/completions");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let requests: Vec<Value> = (0..CALLS)
        .map(|i| {
            json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": format!("Summarize report number {i}.")}],
                "max_tokens": 1_000,
            })
        })
        .collect();
    let answers =
        futures_util::future::join_all(requests.iter().map(|request| chat(&http, &url, request)))
            .await;

    for answer in &answers {
        let answer = answer.as_ref().expect("every call succeeds");
        assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    }
    let served = server.provider().stats();
    assert_eq!(
        served.rate_limited, 0,
        "the server answered 429s: {served:?}"
    );
    assert_eq!(served.admitted, CALLS as u64, "{served:?}");
    server.provider().assert_within_limits();

    let stats = ratelimited::stats::snapshot();
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.rate_limited, 0);
    assert_eq!(family.retries.total(), 0);
    // The limit bound: with the tier table's 200,000 TPM instead of the server's limits the
    // limiter would have sent everything at once, and no caller would have waited.
    assert!(
        family.max_wait.as_millis() > 500,
        "waited at most {:?}",
        family.max_wait
    );
    // `skip(url)` kept the URL out: the estimate is the prompt's (with the chat overhead and
    // OpenAI's character-based charge), not the URL's as well.
    let ratio = family.estimate_ratio().unwrap();
    assert!(
        ratio < 1.5,
        "estimate at {:.0} % of the usage",
        ratio * 100.0
    );
    server.shutdown().await;
}

/// The function above is the README's, character for character.
#[test]
fn the_readme_shows_this_function() {
    let this = include_str!("first_function.rs");
    let (_, rest) = this
        .split_once("// README: first function, begin\n")
        .unwrap();
    let (function, _) = rest.split_once("// README: first function, end").unwrap();
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("```rust\n{function}```")),
        "README.md has no ```rust block equal to:\n{function}"
    );
}
