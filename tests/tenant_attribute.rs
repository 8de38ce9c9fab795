//! `#[rate_limited(model = .., tenant = EXPR)]`, in paused time: calls take turns by tenant
//! within the family, each tenant's budget refuses at its edge naming the tenant, the stats
//! list the top tenants, and the argument that names the tenant is not counted as prompt.

use std::time::Duration;

use ratelimited::testing::{
    fresh_registry_with_env, spawn_scoped, MockLimits, MockProvider, MockRequest, MockResponse,
};
use ratelimited::{rate_limited, Error};
use tokio::time::Instant;

mod common;
use common::ApiError;

const MODEL: &str = "tenant-model";

#[rate_limited(model = "tenant-model", provider = "openai", tenant = user, tokens = 10, max_tokens = 0)]
async fn ask(provider: &MockProvider, user: &str) -> Result<MockResponse, ApiError> {
    let _ = user;
    provider
        .chat(&MockRequest::new(MODEL, 10).max_tokens(0))
        .await
        .map_err(ApiError::Http)
}

/// The tenant is an integer id here, and the prompt is estimated from `prompt` alone.
#[rate_limited(model = "tenant-model", provider = "openai", tenant = customer, max_tokens = 0)]
async fn ask_about(
    provider: &MockProvider,
    customer: u64,
    prompt: &str,
) -> Result<MockResponse, ApiError> {
    let _ = customer;
    provider
        .chat(&MockRequest::new(MODEL, 3).max_tokens(0))
        .await
        .map_err(ApiError::Http)
}

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("RATE_LIMITED_TENANT_MODEL_RPM", "60"),
        ("RATE_LIMITED_TENANT_MODEL_TPM", "1000000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ];
    vars.extend_from_slice(extra);
    vars.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn provider() -> MockProvider {
    MockProvider::new(MockLimits::new(100_000, 10_000_000))
}

/// An import of 100 calls queued at once by one tenant, at one admission a second once the
/// first minute's 60 went: another tenant's call 10 s later is admitted at the next admission,
/// not behind the 40 still queued.
#[tokio::test(start_paused = true)]
async fn another_tenants_call_goes_next_not_behind_the_import() {
    let registry = fresh_registry_with_env(env(&[]));
    let provider = provider();
    let start = Instant::now();
    let import: Vec<_> = (0..100)
        .map(|_| {
            let provider = provider.clone();
            spawn_scoped(async move { ask(&provider, "import").await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let arrived = Instant::now();
    ask(&provider, "alice").await.unwrap();
    let waited = arrived.elapsed();
    println!("alice waited {waited:?} behind an import of 100");
    assert!(waited <= Duration::from_secs(1), "{waited:?}");
    for call in import {
        call.await.unwrap();
    }
    // FIFO alone would have made her wait for the whole import: 40 more seconds.
    assert_eq!(start.elapsed(), Duration::from_secs(41));

    let stats = registry.registry().stats();
    let family = stats.family(MODEL).unwrap();
    let top = &family.top_tenants_by_tokens;
    assert_eq!(top[0].tenant, "import");
    assert_eq!(top[0].admitted, 100);
    assert_eq!(top[0].tokens, 1_000);
    assert_eq!(top[1].tenant, "alice");
    assert_eq!(family.top_tenants_by_wait[0].tenant, "import");
}

/// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_TOKENS`: each tenant's own 25 tokens; the third call
/// of 10 is refused before anything is sent, naming the tenant, and another tenant goes on.
#[tokio::test(start_paused = true)]
async fn a_tenants_budget_refuses_at_its_edge_naming_the_tenant() {
    let _registry = fresh_registry_with_env(env(&[(
        "RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_TOKENS",
        "25",
    )]));
    let provider = provider();
    ask(&provider, "acme").await.unwrap();
    ask(&provider, "acme").await.unwrap();
    let error = ask(&provider, "acme").await.unwrap_err();
    let ApiError::Limiter(Error::BudgetExhausted {
        budget,
        remaining,
        requested,
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(budget, "the openai/tenant-model tenant `acme` token budget");
    assert_eq!(remaining.to_string(), "5 tokens");
    assert_eq!(requested.to_string(), "10 tokens");
    assert_eq!(
        provider.stats().admitted,
        2,
        "nothing sent for the refused call"
    );
    ask(&provider, "globex").await.unwrap();
}

/// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD=day`: the same 25 tokens, each day. The third
/// call is refused until 24 hours after the tenant's first call, then goes.
#[tokio::test(start_paused = true)]
async fn a_daily_tenant_budget_comes_back_the_next_day() {
    let _registry = fresh_registry_with_env(env(&[
        ("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_TOKENS", "25"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_PERIOD", "day"),
    ]));
    let provider = provider();
    let first = Instant::now();
    ask(&provider, "acme").await.unwrap();
    ask(&provider, "acme").await.unwrap();
    tokio::time::sleep_until(first + Duration::from_secs(86_399)).await;
    let error = ask(&provider, "acme").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("tenant `acme` daily token budget"),
        "{error}"
    );
    tokio::time::sleep_until(first + Duration::from_secs(86_400)).await;
    ask(&provider, "acme").await.unwrap();
}

/// A period the variable does not know is an error naming it and what it accepts.
#[tokio::test(start_paused = true)]
async fn an_unknown_budget_period_is_an_error_naming_the_variable() {
    let _registry = fresh_registry_with_env(env(&[(
        "RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_PERIOD",
        "weekly",
    )]));
    let error = ask(&provider(), "acme").await.unwrap_err().to_string();
    assert!(
        error.contains("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_PERIOD")
            && error.contains("weekly")
            && error.contains("`day`"),
        "{error}"
    );
}

/// The tenant's id is not prompt text: the reservation is the prompt's tokens alone.
#[tokio::test(start_paused = true)]
async fn the_tenant_argument_is_not_counted_as_prompt() {
    let registry = fresh_registry_with_env(env(&[]));
    let provider = provider();
    ask_about(&provider, 1_234_567_890_123, "hi").await.unwrap();
    let stats = registry.registry().stats();
    let family = stats.family(MODEL).unwrap();
    assert!(
        family.reserved_tokens <= 2,
        "reserved {} tokens",
        family.reserved_tokens
    );
    assert_eq!(family.top_tenants_by_tokens[0].tenant, "1234567890123");
}
