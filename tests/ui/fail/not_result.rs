//! A return type that is not a `Result`, and no return type at all: errors at the return type
//! (or the name) that say to return a `Result`, none pointing into the library. A standard type
//! (`String`) is rejected by the attribute itself: one error. A name the attribute cannot tell
//! apart from an alias of a `Result` (`Summary`) is left to the type system, which reports it
//! twice (once from the call's result, once from the limiter's error path): the same message
//! and span.
use ratelimited::rate_limited;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> String {
    prompt.to_owned()
}

#[rate_limited(model = "gpt-4o-mini")]
async fn nothing(prompt: &str) {
    let _ = prompt;
}

struct Summary;

#[rate_limited(model = "gpt-4o-mini")]
async fn summary(prompt: &str) -> Summary {
    let _ = prompt;
    Summary
}

fn main() {}
