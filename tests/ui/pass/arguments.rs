//! Argument shapes: owned (cloned per attempt), `&mut` (reborrowed per attempt), `mut`
//! bindings, destructuring patterns and `_`.
#![deny(warnings)]

mod support;

use ratelimited::rate_limited;
use support::ApiError;

#[derive(Clone, Debug, PartialEq)]
struct Request {
    prompt: String,
    max_tokens: u32,
}

#[rate_limited(model = "gpt-4o-mini")]
async fn owned(request: Request, mut suffix: String) -> Result<String, ApiError> {
    suffix.insert(0, ' ');
    Ok(request.prompt + &suffix)
}

#[rate_limited(model = "gpt-4o-mini")]
async fn unique(log: &mut Vec<String>, mut count: &mut u32) -> Result<String, ApiError> {
    log.push("called".to_owned());
    *count += 1;
    let other = &mut 0;
    count = other;
    *count += 1;
    Ok(log.join(","))
}

/// `&mut` passed on to a generic function: the per-attempt reborrow is what makes this work.
#[rate_limited(model = "gpt-4o-mini")]
async fn passes_on(log: &mut String) -> Result<(), ApiError> {
    fn take<W: std::fmt::Write>(mut sink: W) {
        sink.write_str(" passed").unwrap();
    }
    take(log);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini")]
async fn patterns(
    (left, right): (u32, u32),
    Request { prompt, .. }: Request,
    &(a, b): &(u8, u8),
    _: u64,
) -> Result<String, ApiError> {
    Ok(format!("{prompt} {} {}", left + right, a + b))
}

#[rate_limited(model = "gpt-4o-mini")]
async fn copy_args(flag: bool, count: usize, mut total: u64) -> Result<String, ApiError> {
    total += u64::from(flag) + count as u64;
    Ok(total.to_string())
}

fn main() {
    support::run(async {
        let request = Request {
            prompt: "p".to_owned(),
            max_tokens: 5,
        };
        assert_eq!(owned(request.clone(), "s".to_owned()).await.unwrap(), "p s");
        let mut log = Vec::new();
        let mut count = 0;
        assert_eq!(unique(&mut log, &mut count).await.unwrap(), "called");
        assert_eq!(count, 1);
        let mut text = "called".to_owned();
        passes_on(&mut text).await.unwrap();
        assert_eq!(text, "called passed");
        assert_eq!(
            patterns((1, 2), request, &(3, 4), 0).await.unwrap(),
            "p 3 7"
        );
        assert_eq!(copy_args(true, 2, 3).await.unwrap(), "6");
    });
}
