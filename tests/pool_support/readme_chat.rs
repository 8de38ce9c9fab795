use ratelimited::integrations::reqwest::error_for_status;
use ratelimited::{rate_limited, CallError};
use serde_json::Value;

#[rate_limited(pool = "gpt-4o", deployment = deployment)] // bound to each attempt's deployment
async fn chat(http: &reqwest::Client, request: &Value) -> Result<Value, CallError> {
    let endpoint = deployment.endpoint().ok_or("no endpoint")?; // RATE_LIMITED_EAST_ENDPOINT, ..
    let key = std::env::var(deployment.key_var().unwrap_or("AZURE_OPENAI_API_KEY"));
    let url = format!("{endpoint}/chat/completions?api-version=2024-10-21");
    let post = http.post(url).header("api-key", key.unwrap_or_default());
    let response = post.json(request).send().await?; // connection errors: retried
    Ok(error_for_status(response).await?.json().await?) // 429: retried on another deployment
}
