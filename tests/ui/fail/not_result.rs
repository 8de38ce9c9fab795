//! A return type that is not a `Result`, and no return type at all: errors at the return type
//! (or the name) that say to return a `Result`, none pointing into the library. rustc still
//! reports the `Outcome` one twice (once from the call's result, once from the limiter's
//! error path): the same message and span.
use ratelimited::rate_limited;

#[rate_limited(model = "gpt-4o-mini")]
async fn summarize(prompt: &str) -> String {
    prompt.to_owned()
}

#[rate_limited(model = "gpt-4o-mini")]
async fn nothing(prompt: &str) {
    let _ = prompt;
}

fn main() {}
