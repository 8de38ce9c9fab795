//! `self` by value, not `Clone`, in a method that may retry.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

struct Client {
    name: String,
}

impl Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn into_name(self) -> Result<String, ApiError> {
        Ok(self.name)
    }
}

fn main() {}
