//! `std::io::Error` as the error type: it is classified already, but it cannot carry the
//! limiter's errors and the orphan rule forbids adding that, so the message names what works.
use ratelimited::rate_limited;

#[rate_limited(model = "gpt-4o-mini")]
async fn read_prompt(path: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

fn main() {}
