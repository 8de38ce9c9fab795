//! What a planned run sends: how many requests, how large, how many at once, how slow.

use std::time::Duration;

use crate::units::cost::{Cost, Usage};
use crate::units::error::Error;

/// How many prompt tokens each request of a [`Workload`] carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PromptTokens {
    /// Every request has this many prompt tokens.
    Fixed(u64),
    /// Uniformly drawn from `min..=max`.
    Uniform {
        /// The smallest prompt.
        min: u64,
        /// The largest prompt.
        max: u64,
    },
    /// Log-normally distributed with this mean (so a few prompts are much longer than most),
    /// rounded to whole tokens, at least 1.
    LogNormal {
        /// The mean prompt, in tokens.
        mean: u64,
        /// The standard deviation of the prompt's logarithm (0.5 is a moderate spread, 1.0 a
        /// long tail).
        sigma: f64,
    },
}

/// A batch of requests to plan: their number and sizes, the client's concurrency and the
/// provider's latency.
///
/// Prompt sizes are drawn from a seeded generator, so the same workload always plans the same.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::planner::{PromptTokens, Workload};
/// let workload = Workload::new(10_000)
///     .prompt_tokens(PromptTokens::LogNormal { mean: 1_200, sigma: 0.5 })
///     .max_tokens(300)
///     .completion_share(0.6)
///     .concurrency(64)
///     .latency(Duration::from_secs(3));
/// assert_eq!(workload.requests, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Requests to send.
    pub requests: u64,
    /// Prompt tokens of each request.
    pub prompt_tokens: PromptTokens,
    /// The completion cap of each choice (`max_tokens`).
    pub max_tokens: u64,
    /// Choices per request (`n`).
    pub n: u32,
    /// The fraction of `max_tokens` each choice really produces, in `[0, 1]`; it matters only
    /// where the provider refunds unused output (see
    /// [`Planner::refunds_output`](super::Planner::refunds_output)).
    pub completion_share: f64,
    /// Client workers: requests in flight at once at most, each sending its next request as
    /// soon as the previous one answered.
    pub concurrency: u32,
    /// Time from admission to the response, for every request.
    pub latency: Duration,
    /// Seed of the prompt-size generator.
    pub seed: u64,
}

impl Workload {
    /// `requests` requests of 1,000 prompt tokens, `max_tokens` 256, `n` 1, half of the
    /// output used, 16 workers, 2 s latency.
    pub fn new(requests: u64) -> Self {
        Workload {
            requests,
            prompt_tokens: PromptTokens::Fixed(1_000),
            max_tokens: 256,
            n: 1,
            completion_share: 0.5,
            concurrency: 16,
            latency: Duration::from_secs(2),
            seed: 0x5eed_cafe,
        }
    }

    /// Sets the prompt-size distribution.
    #[must_use]
    pub fn prompt_tokens(mut self, prompt_tokens: PromptTokens) -> Self {
        self.prompt_tokens = prompt_tokens;
        self
    }

    /// Sets the completion cap per choice.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u64) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the choices per request.
    #[must_use]
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// Sets the fraction of `max_tokens` each choice produces.
    #[must_use]
    pub fn completion_share(mut self, share: f64) -> Self {
        self.completion_share = share;
        self
    }

    /// Sets the number of client workers.
    #[must_use]
    pub fn concurrency(mut self, concurrency: u32) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the latency of every request.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the seed of the prompt-size generator.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every field, naming the first bad one and what it accepts.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.requests == 0 {
            return Err(Error::config(
                "Workload::requests",
                "0",
                "at least 1 request",
            ));
        }
        if self.concurrency == 0 {
            return Err(Error::config(
                "Workload::concurrency",
                "0",
                "at least 1 worker",
            ));
        }
        if self.n == 0 {
            return Err(Error::config("Workload::n", "0", "at least 1 choice"));
        }
        if !(0.0..=1.0).contains(&self.completion_share) {
            return Err(Error::config(
                "Workload::completion_share",
                self.completion_share.to_string(),
                "a fraction of max_tokens in [0, 1]",
            ));
        }
        match self.prompt_tokens {
            PromptTokens::Fixed(_) => Ok(()),
            PromptTokens::Uniform { min, max } if min > max => Err(Error::config(
                "PromptTokens::Uniform",
                format!("min {min}, max {max}"),
                "min <= max",
            )),
            PromptTokens::Uniform { .. } => Ok(()),
            PromptTokens::LogNormal { mean, sigma } => {
                if mean == 0 {
                    Err(Error::config(
                        "PromptTokens::LogNormal::mean",
                        "0",
                        "a mean of at least 1 token",
                    ))
                } else if !(sigma.is_finite() && (0.0..=4.0).contains(&sigma)) {
                    Err(Error::config(
                        "PromptTokens::LogNormal::sigma",
                        sigma.to_string(),
                        "a finite spread in [0, 4]",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Output reserved per request: `n × max_tokens`.
    pub(crate) fn output_reserved(&self) -> u64 {
        self.max_tokens.saturating_mul(u64::from(self.n))
    }

    /// Output produced per request, rounded up per choice as providers count whole tokens.
    pub(crate) fn output_produced(&self) -> u64 {
        let per_choice = (self.max_tokens as f64 * self.completion_share).ceil() as u64;
        per_choice
            .min(self.max_tokens)
            .saturating_mul(u64::from(self.n))
    }

    /// The prompt size of every request, in order: what a plan sends, so a real or mock run
    /// can send the same.
    pub fn prompts(&self) -> Vec<u64> {
        let mut rng = XorShift::new(self.seed);
        let count = usize::try_from(self.requests).unwrap_or(usize::MAX);
        (0..count)
            .map(|_| match self.prompt_tokens {
                PromptTokens::Fixed(tokens) => tokens,
                PromptTokens::Uniform { min, max } => {
                    let span = max - min;
                    if span == u64::MAX {
                        rng.next()
                    } else {
                        min + rng.next() % (span + 1)
                    }
                }
                PromptTokens::LogNormal { mean, sigma } => {
                    // mu chosen so that the distribution's mean is `mean`.
                    let mu = (mean as f64).ln() - sigma * sigma / 2.0;
                    let tokens = (mu + sigma * rng.standard_normal()).exp().round();
                    (tokens as u64).max(1)
                }
            })
            .collect()
    }

    /// What request `prompt` reserves.
    pub(crate) fn cost(&self, prompt: u64) -> Cost {
        Cost::request(prompt, self.output_reserved())
    }

    /// What request `prompt` settles to, given whether the provider refunds unused output.
    pub(crate) fn usage(&self, prompt: u64, refunds_output: bool) -> Usage {
        let produced = self.output_produced();
        let output = if refunds_output {
            produced
        } else {
            // The provider keeps the whole output reservation: so does the library.
            produced.max(self.output_reserved())
        };
        Usage::new(prompt, output)
    }
}

/// Marsaglia's xorshift64*: enough randomness for prompt sizes, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// One draw of N(0, 1) by Box-Muller.
    fn standard_normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_follow_their_distribution_and_the_seed() {
        let fixed = Workload::new(3).prompt_tokens(PromptTokens::Fixed(7));
        assert_eq!(fixed.prompts(), vec![7, 7, 7]);

        let uniform =
            Workload::new(10_000).prompt_tokens(PromptTokens::Uniform { min: 10, max: 20 });
        let prompts = uniform.prompts();
        assert!(prompts.iter().all(|p| (10..=20).contains(p)));
        assert!(prompts.contains(&10) && prompts.contains(&20));
        assert_eq!(prompts, uniform.prompts(), "same seed, same prompts");
        assert_ne!(prompts, uniform.clone().seed(1).prompts());

        let log_normal = Workload::new(20_000).prompt_tokens(PromptTokens::LogNormal {
            mean: 1_000,
            sigma: 0.5,
        });
        let prompts = log_normal.prompts();
        let mean = prompts.iter().sum::<u64>() as f64 / prompts.len() as f64;
        assert!((mean - 1_000.0).abs() < 20.0, "mean {mean}");
        assert!(prompts.iter().any(|p| *p > 2_000), "a long tail");
    }

    #[test]
    fn output_is_reserved_in_full_and_refunded_only_where_the_provider_refunds() {
        let workload = Workload::new(1).max_tokens(301).n(2).completion_share(0.5);
        assert_eq!(workload.cost(100), Cost::request(100, 602));
        // ceil(301 × 0.5) = 151 per choice.
        assert_eq!(workload.usage(100, true), Usage::new(100, 302));
        assert_eq!(workload.usage(100, false), Usage::new(100, 602));
    }

    #[test]
    fn bad_fields_are_named() {
        let err = Workload::new(5).concurrency(0).validate().unwrap_err();
        assert!(err.to_string().contains("Workload::concurrency"), "{err}");
        let err = Workload::new(5)
            .completion_share(1.5)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("[0, 1]"), "{err}");
        let err = Workload::new(5)
            .prompt_tokens(PromptTokens::Uniform { min: 9, max: 3 })
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("min <= max"), "{err}");
        assert!(Workload::new(0).validate().is_err());
        assert!(Workload::new(1).validate().is_ok());
    }
}
