//! `priority` takes a `Priority`: a literal is refused by the macro, another type by rustc.
use ratelimited::rate_limited;

mod support;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", priority = "high")]
async fn literal(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[rate_limited(model = "gpt-4o-mini", priority = level)]
async fn wrong_type(prompt: &str, level: u8) -> Result<String, ApiError> {
    Ok(format!("{prompt}{level}"))
}

fn main() {}
