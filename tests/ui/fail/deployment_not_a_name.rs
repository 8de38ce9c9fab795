//! `deployment` takes a name to bind, not an expression, a string or `self`.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = "gpt-4o", deployment = "east")]
async fn string(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(pool = "gpt-4o", deployment = target.name())]
async fn expression(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

struct Client;

impl Client {
    #[rate_limited(pool = "gpt-4o", deployment = self)]
    async fn receiver(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

fn main() {}
