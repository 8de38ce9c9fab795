//! Bodies that diverge, coerce, or use `Self`, macros and closures: no new warnings, and the
//! return type still guides `?`, `return` and unsizing coercions.
#![deny(warnings)]

mod support;

use std::fmt::Display;

use ratelimited::rate_limited;
use support::ApiError;

trait Reply: ratelimited::ReportUsage + Display + Send + Sync {}

impl Reply for String {}

#[rate_limited(model = "gpt-4o-mini")]
async fn unsized_coercions(text: &str) -> Result<Box<dyn Reply>, ApiError> {
    if text.is_empty() {
        return Ok(Box::new(String::new()));
    }
    let n: u32 = text.parse()?;
    Ok(Box::new(n.to_string()))
}

#[rate_limited(model = "gpt-4o-mini")]
#[allow(dead_code)]
async fn unfinished(text: &str) -> Result<String, ApiError> {
    todo!("{text}")
}

#[rate_limited(model = "gpt-4o-mini")]
async fn error_conversion(text: &str) -> Result<String, ApiError> {
    let value = text
        .parse::<u8>()
        .map_err(|e| ApiError::Other(e.to_string()))?;
    Ok(value.to_string())
}

#[derive(Clone, Default)]
struct Counter {
    count: u32,
}

impl ratelimited::ReportUsage for Counter {
    fn usage(&self) -> Option<ratelimited::Usage> {
        None
    }
}

impl Counter {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn bump(mut self, by: u32) -> Result<Self, ApiError> {
        let add = |this: &mut Self| this.count += by;
        add(&mut self);
        assert!(self.count > 0, "{}", self.count);
        let copy = Self { ..self };
        Ok(copy)
    }
}

fn main() {
    support::run(async {
        assert_eq!(unsized_coercions("").await.unwrap().to_string(), "");
        assert_eq!(unsized_coercions("7").await.unwrap().to_string(), "7");
        assert!(error_conversion("x").await.is_err());
        assert_eq!(Counter::default().bump(2).await.unwrap().count, 2);
    });
}
