//! The attribute on something that is not a function.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
struct Client;

trait Chat {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
}

fn main() {}
