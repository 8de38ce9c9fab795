//! `crate = "..."` when the facade is renamed, with the original name shadowed.
#![deny(warnings)]

extern crate ratelimited as renamed;

mod support;

#[allow(unused_imports)]
use std as ratelimited;

use support::ApiError;

#[renamed::rate_limited(model = "gpt-4o-mini", crate = "renamed")]
async fn renamed_crate(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_uppercase())
}

mod reexport {
    pub use ::ratelimited as facade;
}

#[renamed::rate_limited(model = "gpt-4o-mini", crate = "crate::reexport::facade", retries = 0)]
async fn through_a_reexport(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

fn main() {
    support::run(async {
        assert_eq!(renamed_crate("abc").await.unwrap(), "ABC");
        assert_eq!(through_a_reexport("x".to_owned()).await.unwrap(), "x");
    });
}
