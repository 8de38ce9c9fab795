//! An `Option` as `model`: the message says to choose the fallback with `unwrap_or`.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = model)]
async fn optional_model(model: Option<&str>, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{model:?}{prompt}"))
}

#[rate_limited(model = "gpt-4o-mini", tier = tier)]
async fn optional_tier(tier: Option<String>, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{tier:?}{prompt}"))
}

fn main() {}
