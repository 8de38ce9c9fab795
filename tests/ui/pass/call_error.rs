//! `ratelimited::CallError` as the error type, for a function whose errors are not the
//! caller's own types: `?` converts I/O errors and text into it, and it carries the limiter's.
#![deny(warnings)]

mod support;

use ratelimited::{rate_limited, CallError, Classify, Verdict};

#[rate_limited(model = "gpt-4o-mini")]
async fn read_prompt(path: &str) -> Result<String, CallError> {
    Ok(std::fs::read_to_string(path)?)
}

#[rate_limited(model = "gpt-4o-mini", retries = 2)]
async fn refuse(prompt: &str) -> Result<String, CallError> {
    Err(format!("refused: {prompt}"))?
}

#[rate_limited(model = "gpt-4o-mini")]
async fn double(text: &str) -> Result<String, CallError> {
    let n: u32 = text.parse().map_err(CallError::provider)?;
    Ok((n * 2).to_string())
}

/// A limiter failure comes back as `CallError::Limiter`.
#[rate_limited(model = "no-such-model")]
async fn unknown_model(prompt: &str) -> Result<String, CallError> {
    Ok(prompt.to_owned())
}

fn main() {
    support::run(async {
        let missing = read_prompt("/nonexistent/prompt.txt").await.unwrap_err();
        assert!(matches!(missing, CallError::Provider(_)));
        assert_eq!(missing.classify(), Verdict::Fatal);

        let refused = refuse("x").await.unwrap_err();
        assert_eq!(refused.to_string(), "refused: x");

        assert_eq!(double("21").await.unwrap(), "42");
        assert!(double("twenty-one").await.is_err());

        let unknown = unknown_model("x").await.unwrap_err();
        assert!(matches!(unknown, CallError::Limiter(_)), "{unknown:?}");
    });
}
