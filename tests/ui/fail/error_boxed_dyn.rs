//! `Box<dyn Error + Send + Sync>` as the error type: the orphan rule forbids implementing
//! `From<ratelimited::Error>` and `Classify` for it, so the messages name what works instead.
use ratelimited::rate_limited;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    Ok(prompt.to_owned())
}

fn main() {}
