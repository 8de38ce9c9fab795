//! Every optional key: `provider`, `tier`, `tokens`, `max_tokens`, `n`, `retries`.
#![deny(warnings)]

mod support;

use ratelimited::rate_limited;
use support::ApiError;

/// A model with no built-in entry, defined by the registry's env, on an OpenAI-compatible
/// endpoint.
#[rate_limited(model = "test-model", provider = "openai", tier = "tier-1")]
async fn provider_and_tier(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_uppercase())
}

#[rate_limited(model = "gpt-4o-mini", tokens = prompt.len() / 4, max_tokens = 256, n = 2)]
async fn explicit_budget(prompt: &str) -> Result<(), ApiError> {
    assert!(!prompt.is_empty());
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", tokens = 1_000u64, max_tokens = limit, n = choices)]
async fn budget_from_arguments(limit: u32, choices: Option<u8>) -> Result<String, ApiError> {
    Ok(format!("{limit} {choices:?}"))
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 64)]
async fn only_max_tokens(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

#[rate_limited(model = "gpt-4o-mini", retries = 3)]
async fn some_retries(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

/// No retries: owned arguments are moved into the single attempt, so they need no `Clone`.
#[rate_limited(model = "gpt-4o-mini", retries = 0)]
async fn no_retries(prompt: NotClone, log: &mut Vec<String>) -> Result<String, ApiError> {
    log.push(prompt.0.clone());
    Ok(prompt.0)
}

struct NotClone(String);

impl NotClone {
    #[rate_limited(model = "gpt-4o-mini", retries = 0)]
    async fn consume(self) -> Result<String, ApiError> {
        Ok(self.0)
    }

    /// With a single attempt, a `&mut` borrow can be handed back.
    #[rate_limited(model = "gpt-4o-mini", retries = 0)]
    async fn text(&mut self) -> Result<&mut String, ApiError> {
        Ok(&mut self.0)
    }
}

fn main() {
    support::run(async {
        assert_eq!(provider_and_tier("abc").await.unwrap(), "ABC");
        explicit_budget("abcd").await.unwrap();
        assert_eq!(
            budget_from_arguments(10, Some(2)).await.unwrap(),
            "10 Some(2)"
        );
        assert_eq!(only_max_tokens("x".to_owned()).await.unwrap(), "x");
        assert_eq!(some_retries("y".to_owned()).await.unwrap(), "y");
        let mut log = Vec::new();
        let text = no_retries(NotClone("z".to_owned()), &mut log)
            .await
            .unwrap();
        assert_eq!(text, "z");
        assert_eq!(log, ["z"]);
        let mut value = NotClone("v".to_owned());
        value.text().await.unwrap().push('!');
        assert_eq!(value.consume().await.unwrap(), "v!");
    });
}
