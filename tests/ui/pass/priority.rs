//! `priority = EXPR`: a lane from a path, an argument or any expression of type `Priority`.
#![deny(warnings)]

mod support;

use ratelimited::{rate_limited, Priority};
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", priority = Priority::Interactive)]
async fn interactive(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_uppercase())
}

#[rate_limited(model = "gpt-4o-mini", priority = lane, retries = 0)]
async fn in_lane(prompt: &str, lane: Priority) -> Result<String, ApiError> {
    Ok(format!("{prompt} {lane}"))
}

#[rate_limited(model = "gpt-4o-mini", priority = if urgent { Priority::Interactive } else { Priority::Batch })]
async fn chosen(urgent: bool) -> Result<String, ApiError> {
    Ok(urgent.to_string())
}

fn main() {
    support::run(async {
        assert_eq!(interactive("abc").await.unwrap(), "ABC");
        assert_eq!(in_lane("x", Priority::Batch).await.unwrap(), "x batch");
        assert_eq!(chosen(true).await.unwrap(), "true");
        assert_eq!(chosen(false).await.unwrap(), "false");
    });
}
