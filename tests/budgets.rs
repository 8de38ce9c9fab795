//! Token and dollar budgets through `#[rate_limited]`: a call that could overspend fails
//! before anything is sent, naming the budget, what is left and what it asked for.

use std::sync::atomic::{AtomicU32, Ordering};

use ratelimited::prices::Price;
use ratelimited::spend::SpendLimit;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{limiter::Cost, rate_limited, spend::Amount, CallError, Error, Registry, Usage};

mod guard_support;
use guard_support::exhausted;

static SENT: AtomicU32 = AtomicU32::new(0);

/// Reserves 400 prompt tokens plus `max_tokens`; reports `usage`.
#[rate_limited(model = "gpt-4o-mini", tokens = 400, max_tokens = max_tokens)]
async fn call(max_tokens: u64, usage: Usage, sent: &AtomicU32) -> Result<Usage, CallError> {
    let _ = max_tokens;
    sent.fetch_add(1, Ordering::SeqCst);
    Ok(usage)
}

#[tokio::test(start_paused = true)]
async fn a_family_token_budget_refuses_the_call_that_could_overspend() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_GPT_4O_MINI_BUDGET_TOKENS", "1000")]);
    let sent = AtomicU32::new(0);
    // Reserves 500, spends the 350 it reports: 650 left.
    call(100, Usage::new(300, 50), &sent).await.unwrap();
    // Reserves 500, spends 500: 150 left.
    call(100, Usage::new(400, 100), &sent).await.unwrap();
    let result = call(100, Usage::new(1, 1), &sent).await;
    let shown = format!("{}", result.as_ref().unwrap_err());
    assert_eq!(
        exhausted(result),
        (
            "the openai/gpt-4o-mini token budget".to_owned(),
            Amount::Tokens(150),
            Amount::Tokens(500)
        )
    );
    assert!(
        shown.contains("has 150 tokens left and this call may use 500 tokens"),
        "{shown}"
    );
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "the refused call sent nothing"
    );
    let stats = ratelimited::stats::snapshot();
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.budget_left.tokens, Some(150));
    assert_eq!((family.issued, family.admitted, family.refused), (3, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_process_dollar_budget_set_in_code_prices_the_whole_output_budget() {
    let price = Price::per_million(1.0, 0.5, 2.0);
    let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")])
        .spend_limit(SpendLimit::usd(0.001))
        .price("gpt-4o-mini", price);
    let _scope = registry.scope();
    call(100, Usage::new(300, 50), &SENT).await.unwrap();
    let spent = price.of_usage(Usage::new(300, 50));
    assert_eq!(ratelimited::stats::snapshot().cost_usd(), spent);
    // 400 prompt tokens at $1/M plus 1,000 output tokens at $2/M: $0.0024, over the $0.0006
    // left (exactly $0.001 - $0.0004: the ledger counts whole nano-dollars, not f64).
    let (budget, remaining, requested) = exhausted(call(1_000, Usage::new(1, 1), &SENT).await);
    assert_eq!(budget, "the process-wide USD budget");
    assert_eq!(remaining, Amount::Usd(0.0006));
    assert_eq!(
        requested,
        Amount::Usd(price.of_reservation(Cost::request(400, 1_000)))
    );
    assert_eq!(SENT.load(Ordering::SeqCst), 1);
    assert_eq!(registry.stats().budget_left.usd, Some(0.0006));
}

#[test]
fn a_dollar_budget_on_a_family_without_a_price_is_a_config_error() {
    let registry = Registry::with_env([
        ("RATE_LIMITED_MY_MODEL_RPM", "60"),
        ("RATE_LIMITED_BUDGET_USD", "5"),
    ]);
    match registry.limiter("openai/my-model") {
        Err(Error::Config {
            variable, expected, ..
        }) => {
            assert_eq!(variable, "RATE_LIMITED_MY_MODEL_PRICE");
            assert!(expected.contains("a dollar budget is set"), "{expected}");
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
    let priced = Registry::with_env([
        ("RATE_LIMITED_MY_MODEL_RPM", "60"),
        ("RATE_LIMITED_BUDGET_USD", "5"),
        ("RATE_LIMITED_MY_MODEL_PRICE", "input=1,output=4"),
    ]);
    assert!(priced.limiter("openai/my-model").is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_dollar_budget_admits_the_call_that_exactly_fits() {
    // At gpt-4o-mini's list price ($0.15/M input, $0.60/M output) a call reserving 400 prompt
    // and 100 output tokens may cost $0.00012, and reports as much: five fit $0.0006 exactly.
    for (variable, budget) in [
        ("RATE_LIMITED_BUDGET_USD", "the process-wide USD budget"),
        (
            "RATE_LIMITED_GPT_4O_MINI_BUDGET_USD",
            "the openai/gpt-4o-mini USD budget",
        ),
    ] {
        let _registry = fresh_registry_with_env([(variable, "0.0006")]);
        let sent = AtomicU32::new(0);
        for fifth in 1..=5 {
            let result = call(100, Usage::new(400, 100), &sent).await;
            assert!(result.is_ok(), "{variable}: call {fifth}: {result:?}");
        }
        let result = call(100, Usage::new(400, 100), &sent).await;
        let shown = format!("{}", result.as_ref().unwrap_err());
        assert!(
            shown.contains("has $0.000000 left and this call may use $0.000120"),
            "{shown}"
        );
        assert_eq!(
            exhausted(result),
            (budget.to_owned(), Amount::Usd(0.0), Amount::Usd(0.00012))
        );
        assert_eq!(sent.load(Ordering::SeqCst), 5, "{variable}");
        let stats = ratelimited::stats::snapshot();
        assert_eq!(stats.cost_usd(), 0.0006);
    }
}

#[test]
fn dollar_variables_take_separators_as_token_variables_do() {
    let registry = Registry::with_env([
        ("RATE_LIMITED_BUDGET_USD", "1_000.50"),
        ("RATE_LIMITED_GPT_4O_MINI_BUDGET_USD", "2_500"),
    ]);
    registry.limiter("gpt-4o-mini").unwrap();
    let stats = registry.stats();
    assert_eq!(stats.budget_left.usd, Some(1_000.5));
    let family = stats.family("gpt-4o-mini").unwrap();
    assert_eq!(family.budget_left.usd, Some(2_500.0));

    for variable in [
        "RATE_LIMITED_BUDGET_USD",
        "RATE_LIMITED_GPT_4O_MINI_BUDGET_USD",
    ] {
        for bad in ["1__000", "_5", "5_", "1_000.", "2._5", "1e3", "$5"] {
            let registry = Registry::with_env([(variable, bad)]);
            match registry.limiter("gpt-4o-mini") {
                Err(Error::Config {
                    variable: named,
                    value,
                    expected,
                }) => {
                    assert_eq!((named.as_str(), value.as_str()), (variable, bad));
                    assert!(expected.contains("`_` separators allowed"), "{expected}");
                }
                other => panic!("{variable}={bad}: expected a Config error, got {other:?}"),
            }
        }
    }
}
