//! Quickstart: 60 concurrent "requests" through one limiter, in real time, in a few seconds.
//!
//! `cargo run --example quickstart`
//!
//! Each task reserves its prompt plus `max_tokens`, "calls the API", then settles with the
//! tokens it really used, which hands the unused part back to the tasks still waiting.

use std::time::Duration;

use ratelimited::{Cost, Dimension, Limiter, Quota, Usage};
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), ratelimited::Error> {
    // A tier-1 gpt-4o-mini (500 RPM, 200,000 TPM) scaled down so the demo is short.
    let quota = Quota::default().rpm(500).tpm(40_000).concurrency(8);
    let limiter = Limiter::new(quota);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let limiter = limiter.clone();
        tasks.push(tokio::spawn(async move {
            let prompt = 300 + (i * 37) % 400;
            let reservation = limiter.acquire(Cost::request(prompt, 256)).await?;
            let waited = start.elapsed();
            tokio::time::sleep(Duration::from_millis(200)).await; // the API call
            let completion = 40 + (i * 13) % 200;
            reservation.settle(Usage::new(prompt, completion));
            Ok::<_, ratelimited::Error>((waited, prompt + completion))
        }));
    }
    let mut tokens = 0;
    let mut last = Duration::ZERO;
    for task in tasks {
        let (admitted_at, used) = task.await.expect("task panicked")?;
        tokens += used;
        last = last.max(admitted_at);
    }
    let elapsed = start.elapsed();
    println!("60 requests, {tokens} tokens in {:.1} s", elapsed.as_secs_f64());
    println!(
        "last admission at {:.1} s: 40,000 TPM admits about 53 reservations of ~750 tokens at \
         once, the rest as refunds and refill free room",
        last.as_secs_f64()
    );
    println!(
        "tokens still counted in the bucket: {:?}",
        limiter.in_use(Dimension::TokensPerMinute)
    );
    Ok(())
}
