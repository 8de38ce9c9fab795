//! Which arguments count as prompt text: an argument that is the `model`, `tier` or `provider`
//! does not, nor does one named in `skip(..)`. Observed through what the call leaves reserved
//! on the family's tokens-per-minute bucket (the result reports no usage, so the estimate
//! stays), in paused time so nothing refills in between.

use ratelimited::rate_limited;
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::tokens::{count_tokens, encoding_for_model};

mod common;
use common::{reserved_tokens, ApiError};

const PROMPT: &str = "Summarize the plot of Moby-Dick in three sentences, for a reader who \
                      has never heard of Captain Ahab or the white whale.";

fn prompt_tokens() -> u64 {
    count_tokens(encoding_for_model("gpt-4o-mini"), PROMPT)
}

#[rate_limited(model = model, max_tokens = 0)]
async fn model_from_argument(model: &str, prompt: &str) -> Result<(), ApiError> {
    let _ = prompt;
    Ok(())
}

#[rate_limited(model = model.as_str(), tier = tier, provider = &*provider, max_tokens = 0)]
async fn every_selector_from_arguments(
    model: String,
    tier: &str,
    provider: String,
    prompt: &str,
) -> Result<(), ApiError> {
    let _ = prompt;
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", skip(trace_note), max_tokens = 0)]
async fn with_a_skipped_note(prompt: &str, trace_note: &str) -> Result<(), ApiError> {
    let _ = (prompt, trace_note);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn with_a_counted_note(prompt: &str, trace_note: &str) -> Result<(), ApiError> {
    let _ = (prompt, trace_note);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_model_argument_is_not_prompt_text() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    model_from_argument("gpt-4o-mini", PROMPT).await.unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens());
}

#[tokio::test(start_paused = true)]
async fn tier_and_provider_arguments_are_not_prompt_text_either() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    every_selector_from_arguments(
        "gpt-4o-mini".to_owned(),
        "tier-1",
        "openai".to_owned(),
        PROMPT,
    )
    .await
    .unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens());
}

#[tokio::test(start_paused = true)]
async fn a_skipped_argument_is_left_out_and_an_unskipped_one_counts() {
    const NOTE: &str = "request 7f3a from the nightly batch";
    let note_tokens = count_tokens(encoding_for_model("gpt-4o-mini"), NOTE);
    assert!(note_tokens > 0);

    let registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    with_a_skipped_note(PROMPT, NOTE).await.unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens());
    drop(registry);

    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    with_a_counted_note(PROMPT, NOTE).await.unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens() + note_tokens);
}

/// An id that shows itself: not `EstimateTokens`, but `Display`.
struct RequestId(u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request-{:016x}", self.0)
    }
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn with_a_counted_id(prompt: &str, id: &RequestId) -> Result<(), ApiError> {
    let _ = (prompt, id);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", skip(id), max_tokens = 0)]
async fn with_a_skipped_id(prompt: &str, id: &RequestId) -> Result<(), ApiError> {
    let _ = (prompt, id);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_display_argument_counts_the_text_it_shows_unless_skipped() {
    let id = RequestId(0x7f3a);
    let id_tokens = count_tokens(encoding_for_model("gpt-4o-mini"), &id.to_string());
    assert!(id_tokens > 0);

    let registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    with_a_counted_id(PROMPT, &id).await.unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens() + id_tokens);
    drop(registry);

    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    with_a_skipped_id(PROMPT, &id).await.unwrap();
    assert_eq!(reserved_tokens(), prompt_tokens());
}
