//! A free function: the simplest form, with `?` and an early `return` in the body.
#![deny(warnings)]

mod support;

use ratelimited::rate_limited;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str, words: &str) -> Result<String, ApiError> {
    let words: usize = words.parse()?;
    if words == 0 {
        return Ok(String::new());
    }
    Ok(prompt
        .split_whitespace()
        .take(words)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Public, documented and with other attributes around it.
#[rate_limited(model = "gpt-4o-mini")]
#[inline]
pub async fn documented(prompt: &str) -> Result<String, ApiError> {
    #![allow(clippy::len_zero)]
    Ok(prompt.len().to_string())
}

fn main() {
    support::run(async {
        assert_eq!(summarize("a b c", "2").await.unwrap(), "a b");
        assert_eq!(summarize("a b c", "0").await.unwrap(), "");
        assert!(matches!(summarize("a", "x").await, Err(ApiError::Parse(_))));
        assert_eq!(documented("abc").await.unwrap(), "3");
    });
}
