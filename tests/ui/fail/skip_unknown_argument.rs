//! `skip` names an argument the function does not have, or is not written as a list: the
//! error is at the name and lists the function's arguments.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", skip(promt))]
async fn summarize(client: &str, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{client}{prompt}"))
}

#[rate_limited(model = "gpt-4o-mini", skip = note)]
async fn not_a_list(prompt: &str, note: &str) -> Result<String, ApiError> {
    Ok(format!("{prompt}{note}"))
}

fn main() {}
