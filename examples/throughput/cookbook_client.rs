//! Strategy (e): the OpenAI cookbook's parallel processor (`api_request_parallel_processor.py`):
//! a tiktoken estimate of each request, request and token capacities that refill continuously
//! up to one minute's limit, requests dispatched in order when both capacities cover them, a
//! 15 s pause of all dispatching after any 429, and up to 5 attempts per request.
//!
//! The script polls every millisecond; this computes the same wait exactly instead, so that
//! paused time does not spin.

use std::cell::RefCell;
use std::time::Duration;

use ratelimited::testing::MockLimits;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::common::ApiError;
use crate::transport::Target;
use crate::workload::Job;

/// `seconds_to_pause_after_rate_limit_error` in the script.
const PAUSE_AFTER_429: Duration = Duration::from_secs(15);
/// `max_attempts` in the script.
const MAX_ATTEMPTS: u32 = 5;

struct Capacity {
    requests: f64,
    tokens: f64,
    updated: Instant,
    last_429: Option<Instant>,
}

/// The dispatcher's shared state.
pub(crate) struct Cookbook {
    limits: MockLimits,
    /// The script dispatches from one loop, in queue order: a FIFO lock plays that loop.
    dispatch: Mutex<()>,
    capacity: RefCell<Capacity>,
}

impl Cookbook {
    pub(crate) fn new(limits: MockLimits) -> Self {
        Cookbook {
            limits,
            dispatch: Mutex::new(()),
            capacity: RefCell::new(Capacity {
                requests: limits.rpm as f64,
                tokens: limits.tpm as f64,
                updated: Instant::now(),
                last_429: None,
            }),
        }
    }

    /// Sends `job` as the script does; an error when its attempts are spent.
    pub(crate) async fn send(&self, target: &Target, job: &Job) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..MAX_ATTEMPTS {
            self.dispatch(job.charge() as f64).await;
            match target.send(job).await {
                Ok(()) => return Ok(()),
                Err(ApiError::Http(e)) if e.status == 429 => {
                    self.capacity.borrow_mut().last_429 = Some(Instant::now());
                    last = ApiError::Http(e).to_string();
                }
                Err(other) => return Err(other.to_string()),
            }
        }
        Err(format!("{MAX_ATTEMPTS} attempts spent; last: {last}"))
    }

    /// Waits for this request's turn, the end of any pause, and the capacity; takes it.
    async fn dispatch(&self, tokens: f64) {
        let _turn = self.dispatch.lock().await;
        loop {
            let wait = {
                let mut capacity = self.capacity.borrow_mut();
                let now = Instant::now();
                let elapsed = now.duration_since(capacity.updated).as_secs_f64();
                let (rpm, tpm) = (self.limits.rpm as f64, self.limits.tpm as f64);
                capacity.requests = (capacity.requests + rpm * elapsed / 60.0).min(rpm);
                capacity.tokens = (capacity.tokens + tpm * elapsed / 60.0).min(tpm);
                capacity.updated = now;
                let paused_until = capacity.last_429.map(|at| at + PAUSE_AFTER_429);
                match paused_until.filter(|until| *until > now) {
                    Some(until) => until - now,
                    None if capacity.requests >= 1.0 && capacity.tokens >= tokens => {
                        capacity.requests -= 1.0;
                        capacity.tokens -= tokens;
                        return;
                    }
                    None => {
                        let for_requests = (1.0 - capacity.requests).max(0.0) * 60.0 / rpm;
                        let for_tokens = (tokens - capacity.tokens).max(0.0) * 60.0 / tpm;
                        // At least the script's 1 ms loop.
                        Duration::from_secs_f64(for_requests.max(for_tokens).max(0.001))
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}
