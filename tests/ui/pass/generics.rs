//! Type, lifetime and const generics, a where clause, `impl Trait` arguments, and a return
//! type that borrows from an argument.
#![deny(warnings)]

mod support;

use std::fmt::Display;

use ratelimited::rate_limited;
use support::ApiError;

#[rate_limited(model = "gpt-4o-mini")]
async fn generic<'a, T, const N: usize>(items: &'a [T; N], sep: &str) -> Result<String, ApiError>
where
    T: Display + 'a,
{
    Ok(items.iter().map(T::to_string).collect::<Vec<_>>().join(sep))
}

#[rate_limited(model = "gpt-4o-mini")]
async fn first_word<'a>(text: &'a str) -> Result<&'a str, ApiError> {
    Ok(text.split_whitespace().next().unwrap_or(""))
}

#[rate_limited(model = "gpt-4o-mini")]
async fn elided(text: &str) -> Result<&str, ApiError> {
    Ok(text.trim())
}

/// An owned `impl Trait` argument is cloned per attempt, so it needs `Clone`; a borrowed one
/// does not.
#[rate_limited(model = "gpt-4o-mini")]
async fn impl_trait(
    prompt: impl AsRef<str> + Clone,
    shown: &impl Display,
) -> Result<String, ApiError> {
    Ok(format!("{} {shown}", prompt.as_ref()))
}

#[rate_limited(model = "gpt-4o-mini")]
async fn owned_generic<T: Clone + Into<String>>(value: T) -> Result<String, ApiError> {
    Ok(value.into())
}

fn main() {
    support::run(async {
        assert_eq!(generic(&[1, 2, 3], "-").await.unwrap(), "1-2-3");
        assert_eq!(first_word("hello world").await.unwrap(), "hello");
        assert_eq!(elided(" x ").await.unwrap(), "x");
        assert_eq!(impl_trait("a", &5).await.unwrap(), "a 5");
        assert_eq!(owned_generic("s").await.unwrap(), "s");
    });
}
