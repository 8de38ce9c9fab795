//! `#[async_trait]` on the impl expands first, so `#[rate_limited]` sees a function that
//! returns a boxed future: the message names the two ways out.
use async_trait::async_trait;
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[async_trait]
trait Chat {
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
}

struct Client;

#[async_trait]
impl Chat for Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

fn main() {}
