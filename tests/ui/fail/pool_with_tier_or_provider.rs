//! Each deployment of a pool has its own tier and provider: neither key goes with `pool`.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(pool = "gpt-4o", deployment = deployment, tier = "tier-2")]
async fn tiered(prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", deployment.name()))
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, provider = "azure")]
async fn provided(prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", deployment.name()))
}

fn main() {}
