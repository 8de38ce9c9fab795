//! The workload every strategy runs: seeded, so every run and every strategy sees the same
//! requests, and the lower bound on its makespan.

use std::time::Duration;

use ratelimited::testing::{MockLimits, MockRequest};
use ratelimited::tokens::{count_chat, encoding_for_model, ChatMessage};
use ratelimited::EstimateTokens;
use serde_json::{json, Value};

/// A model id with no built-in table: the limits come only from the `RATE_LIMITED_BENCH_MODEL_*`
/// variables each run sets (its family id `bench-model` upper-cased, `-` as `_`).
pub const MODEL: &str = "bench-model";
pub const MAX_TOKENS: u64 = 256;
pub const SEED: u64 = 0x5EED_2026;

/// One request of the workload.
pub(crate) struct Job {
    /// Prompt tokens, exactly as the server counts them.
    pub(crate) prompt_tokens: u64,
    /// What the mock completes for it.
    pub(crate) completion_tokens: u64,
    /// The user message (real-time mode only; paused mode sends token counts).
    pub(crate) text: String,
}

impl Job {
    /// What the server charges at admission.
    pub(crate) fn charge(&self) -> u64 {
        self.prompt_tokens + MAX_TOKENS
    }

    pub(crate) fn mock_request(&self) -> MockRequest {
        MockRequest::new(MODEL, self.prompt_tokens).max_tokens(MAX_TOKENS)
    }

    pub(crate) fn body(&self) -> Value {
        json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": self.text}],
            "max_tokens": MAX_TOKENS,
        })
    }
}

/// xorshift64*: enough randomness for a workload, and no dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, by Box-Muller (`1 − u` keeps the logarithm finite).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Words that are one token each (with their leading space) in o200k, the encoding the server
/// and the limiter both use for `bench-model`; the count is measured anyway. Three letters and
/// a space are four characters a token, so OpenAI's character-based estimate (which the limiter
/// also reserves) equals the count and the benchmark measures scheduling, not estimation.
const WORDS: [&str; 8] = ["the", "and", "for", "are", "but", "not", "you", "all"];

/// The first `n` requests of the workload; with `text`, each gets a user message of about its
/// size, and its prompt is what [`count_chat`] measures (the server's count).
pub(crate) fn workload(n: usize, text: bool) -> Vec<Job> {
    let mut rng = Rng::new(SEED);
    let encoding = encoding_for_model(MODEL);
    (0..n)
        .map(|i| {
            let target = (600.0 * (0.5 * rng.normal()).exp()).clamp(32.0, 4_000.0) as u64;
            let fraction = 0.2 + 0.8 * rng.uniform();
            let completion_tokens = ((MAX_TOKENS as f64 * fraction).ceil() as u64).min(MAX_TOKENS);
            if !text {
                return Job {
                    prompt_tokens: target,
                    completion_tokens,
                    text: String::new(),
                };
            }
            // count_chat adds 7 for one user message: 3 framing, "user", 3 reply priming.
            let words = target.saturating_sub(7).max(1) as usize;
            let text = (0..words)
                .map(|w| WORDS[(w * 5 + i) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ");
            let prompt_tokens = count_chat(encoding, &[ChatMessage::user(text.as_str())]);
            let job = Job {
                prompt_tokens,
                completion_tokens,
                text,
            };
            // The limiter must estimate what the server charges, or this benchmark would
            // measure estimation error instead of scheduling.
            assert_eq!(job.body().estimate_tokens(encoding), prompt_tokens);
            job
        })
        .collect()
}

/// The lower bound on the makespan described in the module docs.
pub(crate) fn minimum(
    limits: MockLimits,
    jobs: &[Job],
    latency: Duration,
) -> (Duration, Duration, Duration) {
    // Time for a bucket of `capacity` (refilled `capacity` per minute) to let `total` through.
    let drain = |total: u64, capacity: u64| {
        let nanos = u128::from(total.saturating_sub(capacity)) * 60_000_000_000;
        Duration::from_nanos(nanos.div_ceil(u128::from(capacity)) as u64)
    };
    let tokens = drain(jobs.iter().map(Job::charge).sum(), limits.tpm);
    let requests = drain(jobs.len() as u64, limits.rpm);
    (tokens.max(requests) + latency, tokens, requests)
}
