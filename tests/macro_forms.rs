//! What the expansion does with each form at run time: every attempt gets fresh arguments
//! (a clone of an owned one, a reborrow of a `&mut` one, a clone of `self`), `return` and `?`
//! end the attempt rather than the call, `retries = 0` runs the body once, and the estimate,
//! the output budget and the limiter's own errors reach the runtime and come back through the
//! function's error type. Paused time: retry waits pass instantly.

use std::cell::Cell;

use ratelimited::http::HttpError;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{rate_limited, ReportUsage, Usage};
use serde_json::json;

mod common;
use common::ApiError;

/// A 429 that asks for a 100 ms wait: retryable.
fn too_many_requests() -> ApiError {
    ApiError::Http(HttpError::new(429, [("retry-after-ms", "100")], ""))
}

/// An API that answers 429 to its first `failures` calls.
struct Flaky {
    failures: Cell<u32>,
    calls: Cell<u32>,
}

impl Flaky {
    fn failing(failures: u32) -> Self {
        Flaky {
            failures: Cell::new(failures),
            calls: Cell::new(0),
        }
    }

    fn call(&self) -> Result<(), ApiError> {
        self.calls.set(self.calls.get() + 1);
        if self.failures.get() > 0 {
            self.failures.set(self.failures.get() - 1);
            return Err(too_many_requests());
        }
        Ok(())
    }
}

fn registry() -> ratelimited::testing::ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "1000000"),
    ])
}

/// A registry where one request may hold at most 2,000 × 0.9 tokens.
fn small_registry() -> ratelimited::testing::ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "2000"),
    ])
}

fn too_large(result: &Result<impl std::fmt::Debug, ApiError>) -> bool {
    matches!(
        result,
        Err(ApiError::Limiter(
            ratelimited::Error::RequestTooLarge { .. }
        ))
    )
}

#[rate_limited(model = "gpt-4o-mini")]
async fn append(api: &Flaky, mut text: String) -> Result<String, ApiError> {
    text.push('!');
    api.call()?;
    Ok(text)
}

#[tokio::test(start_paused = true)]
async fn owned_arguments_are_fresh_on_every_attempt() {
    let _registry = registry();
    let api = Flaky::failing(2);
    assert_eq!(append(&api, "x".to_owned()).await.unwrap(), "x!");
    assert_eq!(api.calls.get(), 3);
}

#[rate_limited(model = "gpt-4o-mini")]
async fn record(api: &Flaky, log: &mut Vec<u32>) -> Result<String, ApiError> {
    log.push(api.calls.get());
    api.call()?;
    Ok(format!("{log:?}"))
}

#[tokio::test(start_paused = true)]
async fn mut_references_are_reborrowed_on_every_attempt() {
    let _registry = registry();
    let api = Flaky::failing(1);
    let mut log = Vec::new();
    assert_eq!(record(&api, &mut log).await.unwrap(), "[0, 1]");
    // Changes made by failed attempts through a `&mut` stay: it is the caller's value.
    assert_eq!(log, [0, 1]);
}

#[derive(Clone, Debug, Default)]
struct Counter {
    count: u32,
}

impl ReportUsage for Counter {
    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl Counter {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn bump(mut self, api: &Flaky) -> Result<Counter, ApiError> {
        self.count += 1;
        api.call()?;
        Ok(self)
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn bump_in_place(&mut self, api: &Flaky) -> Result<String, ApiError> {
        self.count += 1;
        api.call()?;
        Ok(self.count.to_string())
    }
}

#[tokio::test(start_paused = true)]
async fn self_by_value_is_cloned_on_every_attempt() {
    let _registry = registry();
    let api = Flaky::failing(2);
    assert_eq!(Counter::default().bump(&api).await.unwrap().count, 1);
    assert_eq!(api.calls.get(), 3);

    let api = Flaky::failing(2);
    let mut counter = Counter::default();
    assert_eq!(counter.bump_in_place(&api).await.unwrap(), "3");
}

#[rate_limited(model = "gpt-4o-mini")]
async fn early_return(api: &Flaky) -> Result<String, ApiError> {
    if api.call().is_err() {
        return Err(too_many_requests());
    }
    Ok("done".to_owned())
}

#[tokio::test(start_paused = true)]
async fn return_ends_the_attempt_not_the_call() {
    let _registry = registry();
    let api = Flaky::failing(1);
    assert_eq!(early_return(&api).await.unwrap(), "done");
    assert_eq!(api.calls.get(), 2);
}

#[rate_limited(model = "gpt-4o-mini", retries = 0)]
async fn once(api: &Flaky) -> Result<String, ApiError> {
    api.call()?;
    Ok("done".to_owned())
}

#[rate_limited(model = "gpt-4o-mini", retries = 2)]
async fn twice_more(api: &Flaky) -> Result<String, ApiError> {
    api.call()?;
    Ok("done".to_owned())
}

#[tokio::test(start_paused = true)]
async fn retries_caps_the_attempts() {
    let _registry = registry();
    let api = Flaky::failing(5);
    // With no retry on offer, the function's own error comes back as it was.
    let error = once(&api).await.unwrap_err();
    assert!(
        matches!(&error, ApiError::Http(e) if e.status == 429),
        "{error:?}"
    );
    assert_eq!(api.calls.get(), 1);

    let api = Flaky::failing(5);
    assert!(twice_more(&api).await.is_err());
    assert_eq!(api.calls.get(), 3);
}

#[rate_limited(model = "gpt-4o-mini", tokens = tokens)]
async fn explicit_tokens(api: &Flaky, tokens: u64) -> Result<String, ApiError> {
    api.call()?;
    Ok(tokens.to_string())
}

#[tokio::test(start_paused = true)]
async fn limiter_errors_come_back_through_the_functions_error_type() {
    let _registry = small_registry();
    let api = Flaky::failing(0);
    assert!(too_large(&explicit_tokens(&api, 5_000).await));
    assert_eq!(api.calls.get(), 0, "the body never ran");
    assert_eq!(explicit_tokens(&api, 10).await.unwrap(), "10");
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 1)]
async fn estimated(
    api: &Flaky,
    (prompt, _): (&str, &str),
    _: &str,
    history: Vec<String>,
) -> Result<String, ApiError> {
    api.call()?;
    Ok(format!("{} {}", prompt.len(), history.len()))
}

#[tokio::test(start_paused = true)]
async fn every_argument_is_estimated() {
    let _registry = small_registry();
    let api = Flaky::failing(0);
    let long = "word ".repeat(3_000);
    assert_eq!(
        estimated(&api, ("short", ""), "x", vec![]).await.unwrap(),
        "5 0"
    );
    // The long text in any position, a destructured one or `_` included, is too large.
    assert!(too_large(&estimated(&api, (&long, ""), "x", vec![]).await));
    assert!(too_large(
        &estimated(&api, ("short", ""), &long, vec![]).await
    ));
    assert!(too_large(
        &estimated(&api, ("short", ""), "x", vec![long.clone()]).await
    ));
    assert_eq!(api.calls.get(), 1);
}

#[rate_limited(model = "gpt-4o-mini")]
async fn chat(api: &Flaky, request: &serde_json::Value) -> Result<String, ApiError> {
    api.call()?;
    Ok(request["max_tokens"].to_string())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 10, n = 1)]
async fn chat_capped(api: &Flaky, request: &serde_json::Value) -> Result<String, ApiError> {
    api.call()?;
    Ok(request["max_tokens"].to_string())
}

#[tokio::test(start_paused = true)]
async fn the_output_budget_comes_from_arguments_unless_the_attribute_sets_it() {
    let _registry = small_registry();
    let api = Flaky::failing(0);
    let small = json!({"messages": [], "max_tokens": 100});
    let large = json!({"messages": [], "max_tokens": 100, "n": 50});
    assert_eq!(chat(&api, &small).await.unwrap(), "100");
    assert!(too_large(&chat(&api, &large).await));
    assert_eq!(chat_capped(&api, &large).await.unwrap(), "100");
}

#[rate_limited(model = model, provider = "openai")]
async fn any_model(api: &Flaky, model: &str) -> Result<String, ApiError> {
    api.call()?;
    Ok(model.to_owned())
}

#[tokio::test(start_paused = true)]
async fn model_expressions_are_resolved_per_call() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_MY_MODEL_RPM", "60"),
        ("RATE_LIMITED_MY_MODEL_TPM", "100000"),
    ]);
    let api = Flaky::failing(0);
    assert_eq!(any_model(&api, "my-model").await.unwrap(), "my-model");
    let error = any_model(&api, "unknown-model").await.unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Limiter(ratelimited::Error::UnknownModel { .. })
        ),
        "{error:?}"
    );
    assert_eq!(api.calls.get(), 1);
}
