//! `skip(..)`, and arguments that are the `model`, `tier` or `provider`: all left out of the
//! estimate (tests/estimate_args.rs checks the counts).
#![deny(warnings)]

mod support;

use ratelimited::rate_limited;
use support::ApiError;

#[rate_limited(model = model, skip(request_id))]
async fn complete(model: &str, prompt: &str, request_id: u64) -> Result<String, ApiError> {
    Ok(format!("{request_id}: {prompt}"))
}

#[rate_limited(model = "gpt-4o-mini", tier = tier.as_str(), skip(note, trace,))]
async fn noted(prompt: String, tier: String, note: &str, trace: &str) -> Result<String, ApiError> {
    Ok(format!("{prompt} {note} {trace}"))
}

/// Only the argument's own name counts: a pattern-bound argument cannot be skipped, but a
/// named one next to it can.
#[rate_limited(model = "test-model", provider = provider, skip(provider))]
async fn with_a_pattern((a, b): (&str, &str), provider: &str) -> Result<String, ApiError> {
    Ok(format!("{a}{b}"))
}

fn main() {
    support::run(async {
        assert_eq!(complete("gpt-4o-mini", "hi", 7).await.unwrap(), "7: hi");
        assert_eq!(
            noted("p".to_owned(), "tier-1".to_owned(), "n", "t")
                .await
                .unwrap(),
            "p n t"
        );
        assert_eq!(with_a_pattern(("a", "b"), "openai").await.unwrap(), "ab");
    });
}
