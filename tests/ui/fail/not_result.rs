//! A return type that is not a `Result`, and no return type at all.
//!
//! Characterization: besides the `Outcome` error, rustc also reports two type mismatches from
//! the expansion; they go away once the runtime takes the `Result` through `Outcome`.
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
