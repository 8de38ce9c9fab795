//! The streaming form: the function declares `Result<RateLimitedStream<S>, E>`, the body
//! returns the bare stream, `?` and an early `return` included; with and without retries.
#![deny(warnings)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::testing::MockStream;
use ratelimited::{rate_limited, stream::RateLimitedStream, Usage};
use serde_json::json;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini", stream)]
async fn chat(prompt: &str, words: &str) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let words: u64 = words.parse()?;
    if words == 0 {
        return Ok(MockStream::scripted([]));
    }
    let _ = prompt;
    Ok(MockStream::scripted([
        (
            Duration::ZERO,
            Ok(json!({"choices": [{"delta": {"content": "hi"}}]})),
        ),
        (
            Duration::ZERO,
            Ok(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": words}})),
        ),
    ]))
}

#[rate_limited(model = "gpt-4o-mini", retries = 0, stream)]
async fn once(prompt: String) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let _ = prompt;
    Ok(MockStream::scripted([]))
}

fn main() {
    support::run(async {
        let mut stream = chat("hello", "7").await.unwrap();
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            chunk.unwrap();
            chunks += 1;
        }
        assert_eq!(chunks, 2);
        assert_eq!(stream.usage(), Some(Usage::new(3, 7)));
        assert!(chat("hello", "0").await.unwrap().next().await.is_none());
        assert!(matches!(chat("hello", "x").await, Err(ApiError::Parse(_))));
        assert!(once("hi".to_owned()).await.unwrap().next().await.is_none());
    });
}
