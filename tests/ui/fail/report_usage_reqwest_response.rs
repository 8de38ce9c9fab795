//! Returning the raw `reqwest::Response`: the advice is to return the parsed body (or
//! `WithHeaders`), not to implement `ReportUsage` for another crate's type.
use ratelimited::{rate_limited, CallError};

#[rate_limited(model = "gpt-4o-mini", skip(url))]
async fn complete(
    http: &reqwest::Client,
    url: &str,
    prompt: &str,
) -> Result<reqwest::Response, CallError> {
    Ok(http.post(url).body(prompt.to_owned()).send().await?)
}

fn main() {}
