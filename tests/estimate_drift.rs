//! The estimate-drift diagnostic: when a family's prompt estimates run far above or below the
//! input tokens its server reports, the library says so once, with the likely cause and the
//! fix; an estimate that matches the server says nothing. In paused time, against answers that
//! report the prompt's real token count.

use ratelimited::testing::fresh_registry_with_env;
use ratelimited::tokens::{count_tokens, encoding_for_model};
use ratelimited::{rate_limited, CallError, Usage};

mod warnings_support;
use warnings_support::Warnings;

const URL: &str = "https://llm-gateway.internal.example/v1/projects/analytics-batch/deployments/\
                   gpt-4o-mini-2024-07-18/chat/completions?api-version=2024-10-21&trace=on";
const PROMPT: &str = "Name one whale.";

/// What the server counts: the prompt alone.
fn server_input() -> u64 {
    count_tokens(encoding_for_model("gpt-4o-mini"), PROMPT)
}

/// A reqwest user's first function: the URL is an argument, and is read as prompt text.
#[rate_limited(model = "gpt-4o-mini", max_tokens = 5, retries = 0)]
async fn with_url(url: &str, prompt: &str) -> Result<Usage, CallError> {
    let _ = (url, prompt);
    Ok(Usage::new(server_input(), 5))
}

/// The same function with the URL left out.
#[rate_limited(model = "gpt-4o-mini", max_tokens = 5, retries = 0, skip(url))]
async fn url_skipped(url: &str, prompt: &str) -> Result<Usage, CallError> {
    let _ = (url, prompt);
    Ok(Usage::new(server_input(), 5))
}

/// The prompt is built inside the function: nothing in the arguments says how long it is.
#[rate_limited(model = "gpt-4o-mini", max_tokens = 5, retries = 0)]
async fn built_inside(topic_id: u32) -> Result<Usage, CallError> {
    let _ = topic_id;
    Ok(Usage::new(800, 5))
}

fn drift_warnings(warnings: &Warnings) -> Vec<String> {
    warnings.about("target=ratelimited::estimate")
}

fn registry() -> ratelimited::testing::ScopeGuard {
    fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "100000"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "100000000"),
    ])
}

#[tokio::test(start_paused = true)]
async fn an_argument_counted_as_prompt_is_told_once_with_the_fix() {
    let _registry = registry();
    let (warnings, _guard) = Warnings::catch();
    for call in 1..=30 {
        with_url(URL, PROMPT).await.unwrap();
        // Nine answers are too few to judge; the tenth tells.
        let expected = usize::from(call >= 10);
        assert_eq!(
            drift_warnings(&warnings).len(),
            expected,
            "after {call} calls"
        );
    }
    let told = &drift_warnings(&warnings)[0];
    assert!(told.contains("skip(name)"), "{told}");
    assert!(told.contains("openai/gpt-4o-mini"), "{told}");
    assert!(told.contains("calls=10"), "{told}");
}

#[tokio::test(start_paused = true)]
async fn a_prompt_the_arguments_do_not_hold_is_told_once() {
    let _registry = registry();
    let (warnings, _guard) = Warnings::catch();
    for _ in 0..20 {
        built_inside(7).await.unwrap();
    }
    let told = drift_warnings(&warnings);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("tokens = .."), "{}", told[0]);
    assert!(
        told[0].contains("reported_input_tokens=8000"),
        "{}",
        told[0]
    );
}

#[tokio::test(start_paused = true)]
async fn an_estimate_that_matches_the_server_says_nothing() {
    let _registry = registry();
    let (warnings, _guard) = Warnings::catch();
    for _ in 0..30 {
        url_skipped(URL, PROMPT).await.unwrap();
    }
    assert_eq!(drift_warnings(&warnings), Vec::<String>::new());
}
