//! The money and health guards of one family hold across its tiers, in paused time: two call
//! sites of `gpt-4o-mini`, one on the default tier and one naming `tier = "tier-2"`, draw on two
//! limiters (limits differ by tier) but on one budget, one breaker and one stats entry.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::prices::Price;
use ratelimited::spend::Amount;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{rate_limited, stats::BreakerState, CallError, Registry, Usage};
use tokio::time::advance;

mod guard_support;
use guard_support::{circuit_open, exhausted};

/// Counts the call as sent and answers `status` (200 = the whole reservation as usage).
fn answer(status: u16, sent: &AtomicU32) -> Result<Usage, CallError> {
    sent.fetch_add(1, Ordering::SeqCst);
    match status {
        200 => Ok(Usage::new(400, 100)),
        status => Err(HttpError::new(status, [("x", "y")], "overloaded").into()),
    }
}

/// Reserves 400 + 100 tokens on the default tier (tier-1).
#[rate_limited(model = "gpt-4o-mini", tokens = 400, max_tokens = 100, retries = 0)]
async fn on_default_tier(status: u16, sent: &AtomicU32) -> Result<Usage, CallError> {
    answer(status, sent)
}

/// Reserves 400 + 100 tokens on tier-2.
#[rate_limited(
    model = "gpt-4o-mini",
    tier = "tier-2",
    tokens = 400,
    max_tokens = 100,
    retries = 0
)]
async fn on_tier_two(status: u16, sent: &AtomicU32) -> Result<Usage, CallError> {
    answer(status, sent)
}

#[tokio::test(start_paused = true)]
async fn a_family_token_budget_binds_every_tier_together() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "1000")]);
    let sent = AtomicU32::new(0);
    on_default_tier(200, &sent).await.unwrap();
    on_tier_two(200, &sent).await.unwrap();
    // 1,000 spent between the two tiers: neither may send a third call.
    let refused = (
        "the openai/gpt-4o-mini token budget".to_owned(),
        Amount::Tokens(0),
        Amount::Tokens(500),
    );
    assert_eq!(exhausted(on_tier_two(200, &sent).await), refused);
    assert_eq!(exhausted(on_default_tier(200, &sent).await), refused);
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "the refused calls sent nothing"
    );
    let stats = ratelimited::stats::snapshot();
    assert_eq!(
        stats.family("gpt-4o-mini").unwrap().budget_left.tokens,
        Some(0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_stats_show_one_family_whole_with_every_tier_it_used() {
    let registry = Registry::with_env([("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "2000")])
        .price("gpt-4o-mini", Price::per_million(1.0, 0.5, 2.0));
    let _scope = registry.scope();
    let sent = AtomicU32::new(0);
    on_tier_two(200, &sent).await.unwrap();
    on_default_tier(200, &sent).await.unwrap();
    assert!(on_default_tier(503, &sent).await.is_err());
    assert_eq!(registry.limiters().len(), 2, "one limiter per tier");

    let stats = registry.stats();
    assert_eq!(stats.families.len(), 1, "{:?}", stats.families);
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.tiers, ["tier-1", "tier-2"]);
    assert_eq!(
        (
            family.issued,
            family.admitted,
            family.refused,
            family.in_flight
        ),
        (3, 3, 0, 0)
    );
    assert_eq!(
        (family.transient_failures, family.reserved_tokens),
        (1, 1_500)
    );
    assert_eq!(
        (
            family.reported_calls,
            family.reported_input_tokens,
            family.reported_output_tokens
        ),
        (2, 800, 200)
    );
    // Two answered calls of 400 input tokens at $1/M and 100 output tokens at $2/M; the 503
    // spent nothing.
    assert_eq!(family.cost_usd, Some(0.0012));
    assert_eq!(stats.cost_usd(), 0.0012);
    assert_eq!(family.budget_left.tokens, Some(1_000));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opened_on_one_tier_refuses_the_other() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_BREAKER_FAILURES", "3"),
        ("RATE_LIMITED_BREAKER_COOLDOWN_MS", "30000"),
    ]);
    let sent = AtomicU32::new(0);
    for _ in 0..3 {
        assert!(on_default_tier(503, &sent).await.is_err());
    }
    // The provider is down for the family, whichever tier's limits a call waits on.
    assert_eq!(
        circuit_open(on_tier_two(200, &sent).await),
        Some(Duration::from_secs(30))
    );
    assert_eq!(sent.load(Ordering::SeqCst), 3, "nothing sent while open");
    let breaker = || {
        ratelimited::stats::snapshot()
            .family("gpt-4o-mini")
            .unwrap()
            .breaker
    };
    assert_eq!(breaker(), BreakerState::Open);

    // After the cool-down a probe on tier-2 that gets an answer closes it for tier-1 too.
    advance(Duration::from_secs(30)).await;
    on_tier_two(200, &sent).await.unwrap();
    assert_eq!(breaker(), BreakerState::Closed);
    on_default_tier(200, &sent).await.unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 5);
}
