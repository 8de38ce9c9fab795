//! The keys may use the names a destructuring pattern binds: for an argument passed by `&`
//! reference they are what the body sees, for one passed by value or `&mut` shared references
//! to its parts.
#![deny(warnings)]

mod support;

use ratelimited::{rate_limited, Priority};
use support::ApiError;

#[derive(Clone)]
struct Request {
    model: String,
    prompt: String,
    max_tokens: u32,
    choices: Option<u8>,
    lane: Priority,
}

impl Request {
    fn new(prompt: &str) -> Request {
        Request {
            model: "gpt-4o-mini".to_owned(),
            prompt: prompt.to_owned(),
            max_tokens: 16,
            choices: Some(1),
            lane: Priority::Batch,
        }
    }
}

/// By value: `model` is a `&String`, `max_tokens` a `&u32`, `choices` a `&Option<u8>`.
#[rate_limited(model = model, max_tokens = max_tokens, n = *choices, priority = *lane)]
async fn by_value(
    Request {
        model,
        prompt,
        max_tokens,
        choices,
        lane,
    }: Request,
) -> Result<String, ApiError> {
    Ok(format!("{model} {prompt} {max_tokens} {choices:?} {lane}"))
}

/// By value with `mut` bindings the body reassigns, and a nested pattern.
#[rate_limited(model = "gpt-4o-mini", tokens = prompt.len() / 4, max_tokens = max_tokens + 1)]
async fn by_value_mut(
    (
        Request {
            mut prompt,
            max_tokens,
            ..
        },
        mut suffix,
    ): (Request, String),
) -> Result<String, ApiError> {
    let local = String::from("!");
    suffix.push_str(&local);
    prompt.push_str(&suffix);
    Ok(format!("{prompt} {max_tokens}"))
}

/// By reference: the keys see what the body sees.
#[rate_limited(model = model.as_str(), max_tokens = *max_tokens, priority = *lane)]
async fn by_reference(
    Request {
        model,
        max_tokens,
        lane,
        ..
    }: &Request,
) -> Result<String, ApiError> {
    Ok(format!("{model} {max_tokens} {lane}"))
}

/// By `&mut`: shared references for the keys (the estimate reads the argument meanwhile), a
/// reborrow per attempt for the body.
#[rate_limited(model = "gpt-4o-mini", max_tokens = *max_tokens)]
async fn by_unique_reference(
    Request {
        prompt, max_tokens, ..
    }: &mut Request,
) -> Result<String, ApiError> {
    prompt.push('?');
    *max_tokens += 1;
    Ok(prompt.clone())
}

/// A tuple, and a reference pattern.
#[rate_limited(model = model, max_tokens = limit)]
async fn tuple(&(model, limit): &(&str, u32), prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{model} {limit} {prompt}"))
}

struct NotClone {
    prompt: String,
    limit: u32,
}

/// No retries: the argument is moved into the one attempt after the keys have read it.
#[rate_limited(model = "gpt-4o-mini", max_tokens = limit, retries = 0)]
async fn no_retries(NotClone { prompt, limit }: NotClone) -> Result<String, ApiError> {
    Ok(format!("{prompt} {limit}"))
}

fn main() {
    support::run(async {
        assert_eq!(
            by_value(Request::new("hi")).await.unwrap(),
            "gpt-4o-mini hi 16 Some(1) batch"
        );
        assert_eq!(
            by_value_mut((Request::new("hi"), "?".to_owned()))
                .await
                .unwrap(),
            "hi?! 16"
        );
        assert_eq!(
            by_reference(&Request::new("hi")).await.unwrap(),
            "gpt-4o-mini 16 batch"
        );
        let mut request = Request::new("hi");
        assert_eq!(by_unique_reference(&mut request).await.unwrap(), "hi?");
        assert_eq!(request.max_tokens, 17);
        assert_eq!(
            tuple(&("gpt-4o-mini", 8), "hi").await.unwrap(),
            "gpt-4o-mini 8 hi"
        );
        let moved = NotClone {
            prompt: "hi".to_owned(),
            limit: 4,
        };
        assert_eq!(no_retries(moved).await.unwrap(), "hi 4");
    });
}
