//! The user's own lints still apply to an annotated function.
#![deny(dead_code, unused_mut)]

use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn never_called(mut prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

fn main() {}
