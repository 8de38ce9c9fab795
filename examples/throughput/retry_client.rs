//! Strategy (b): no limiter; on a 429 wait as the server says (else exponential backoff with
//! jitter) and try again, at most [`MAX_RETRIES`] times, as most SDKs do.

use std::time::Duration;

use crate::common::ApiError;
use crate::peer::retry_after;
use crate::transport::Target;
use crate::workload::{Job, Rng};

/// The retry budget of the two peers.
const MAX_RETRIES: u32 = 10;

/// Sends until a success, retrying 429s as the server asks; an error when the request is lost
/// (retries spent, or an error that is not a 429).
pub(crate) async fn send_with_retries(
    target: &Target,
    job: &Job,
    rng: &mut Rng,
) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        let error = match target.send(job).await {
            Ok(()) => return Ok(()),
            Err(ApiError::Http(e)) if e.status == 429 => e,
            Err(other) => return Err(other.to_string()),
        };
        if attempt == MAX_RETRIES {
            return Err(format!(
                "{MAX_RETRIES} retries spent; last: {}",
                ApiError::Http(error)
            ));
        }
        let wait = retry_after(&error).unwrap_or_else(|| {
            let base = (0.5 * f64::from(1u32 << attempt.min(4))).min(8.0);
            Duration::from_secs_f64(base * (0.5 + 0.5 * rng.uniform()))
        });
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Strategy (d): retries every 429 with exponential backoff until it succeeds, ignoring the
/// server's hint, as async-openai does by default (the `backoff` crate's exponential policy:
/// 0.5 s doubling, randomized by ±50 %, at most 60 s between tries). Nothing is lost; the cost
/// is the time and the 429s.
pub(crate) async fn send_until_success(
    target: &Target,
    job: &Job,
    rng: &mut Rng,
) -> Result<(), String> {
    let mut attempt = 0u32;
    loop {
        match target.send(job).await {
            Ok(()) => return Ok(()),
            Err(ApiError::Http(e)) if e.status == 429 => {}
            Err(other) => return Err(other.to_string()),
        }
        let base = (0.5 * 2f64.powi(attempt.min(7) as i32)).min(60.0);
        tokio::time::sleep(Duration::from_secs_f64(base * (0.5 + rng.uniform()))).await;
        attempt += 1;
    }
}
