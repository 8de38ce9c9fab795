//! `crate = "..."` for a renamed facade, with the original name taken by something else (as
//! tokio's `macros_rename_test.rs` does).

extern crate ratelimited as renamed;

#[allow(unused_imports)]
use std as ratelimited;

#[derive(Debug)]
struct ApiError;

impl From<renamed::Error> for ApiError {
    fn from(_: renamed::Error) -> Self {
        ApiError
    }
}

impl renamed::Classify for ApiError {
    fn classify(&self) -> renamed::Verdict {
        renamed::Verdict::Fatal
    }
}

#[renamed::rate_limited(model = "gpt-4o-mini", crate = "renamed")]
async fn summarize(prompt: &str, request: String) -> Result<String, ApiError> {
    Ok(format!("{prompt} {request}"))
}

mod nested {
    pub mod facade {
        pub use ::renamed::*;
    }
}

#[renamed::rate_limited(model = "gpt-4o-mini", crate = "crate::nested::facade", tokens = 10)]
async fn through_a_module(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_uppercase())
}

#[tokio::test]
async fn renamed_facade() {
    let _registry = renamed::testing::fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "1000000"),
    ]);
    assert_eq!(summarize("a", "b".to_owned()).await.unwrap(), "a b");
    assert_eq!(through_a_module("x").await.unwrap(), "X");
}
