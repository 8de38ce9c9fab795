//! What the pool tests share: three deployments of one model behind three `MockProvider`s with
//! different limits, calls run on the pool with `PoolCall`, and the pooled minimum a run is
//! measured against.
#![allow(dead_code)] // each test file uses the part it needs

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimited::pool::{DeploymentConfig, PoolCall, PoolConfig};
use ratelimited::testing::{MockLimits, MockProvider, MockRequest, MockResponse};
use ratelimited::{Quota, Registry};
use tokio::time::Instant;

#[path = "../common/mod.rs"]
mod common;
pub use common::ApiError;

/// Requests per minute high enough never to bind: the tokens do.
pub const RPM: u64 = 100_000;

/// The deployments and their tokens per minute, in the pool's order.
pub const DEPLOYMENTS: [(&str, u64); 3] = [("east", 100_000), ("west", 50_000), ("north", 20_000)];

/// A registry with the pool `gpt-4o` of `deployments` (limits set in code, headroom 1) and a
/// mock provider per deployment with the same limits.
pub struct Fleet {
    pub registry: Registry,
    pub providers: Vec<(String, MockProvider)>,
}

impl Fleet {
    pub fn new(deployments: &[(&str, u64)], spill_after: Option<Duration>) -> Fleet {
        Fleet::with_env(deployments, spill_after, &[])
    }

    pub fn with_env(
        deployments: &[(&str, u64)],
        spill_after: Option<Duration>,
        env: &[(&str, &str)],
    ) -> Fleet {
        let mut pool = PoolConfig::new("gpt-4o");
        let mut providers = Vec::new();
        for &(name, tpm) in deployments {
            pool = pool.deployment(
                DeploymentConfig::new(name, "azure/gpt-4o")
                    .quota(Quota::default().rpm(RPM).tpm(tpm)),
            );
            providers.push((
                name.to_owned(),
                MockProvider::new(MockLimits::new(RPM, tpm)),
            ));
        }
        if let Some(spill_after) = spill_after {
            pool = pool.spill_after(spill_after);
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Fleet {
            registry: Registry::with_env(env).with_pool(pool),
            providers,
        }
    }

    pub fn provider(&self, name: &str) -> &MockProvider {
        &self.providers.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Fires one call per `(prompt, max_tokens)` at once, each on the pool through
    /// `PoolCall::run`, and returns, per call, its result, when it finished and the
    /// deployments its attempts went to.
    pub async fn run(&self, sizes: &[(u64, u64)]) -> Vec<Outcome> {
        let start = Instant::now();
        let providers = Arc::new(self.providers.clone());
        let tasks: Vec<_> = sizes
            .iter()
            .map(|&(prompt, max_tokens)| {
                let registry = self.registry.clone();
                let providers = Arc::clone(&providers);
                tokio::spawn(async move {
                    let visits = Arc::new(Mutex::new(Vec::new()));
                    let mut call = PoolCall::in_registry(&registry, "gpt-4o", None).unwrap();
                    call.set_input_tokens(prompt);
                    call.set_max_tokens(max_tokens);
                    let seen = Arc::clone(&visits);
                    let result = call
                        .run(|deployment| {
                            let name = deployment.name().to_owned();
                            seen.lock().unwrap().push((name.clone(), start.elapsed()));
                            let provider = providers
                                .iter()
                                .find(|(n, _)| *n == name)
                                .unwrap()
                                .1
                                .clone();
                            let request = MockRequest::new("gpt-4o", prompt).max_tokens(max_tokens);
                            async move { provider.chat(&request).await.map_err(ApiError::Http) }
                        })
                        .await;
                    let visits = visits.lock().unwrap().clone();
                    Outcome {
                        result,
                        finished: start.elapsed(),
                        visits,
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }
}

/// One call of [`Fleet::run`].
pub struct Outcome {
    pub result: Result<MockResponse, ApiError>,
    pub finished: Duration,
    /// Each attempt's deployment, and when it was sent.
    pub visits: Vec<(String, Duration)>,
}

/// The calls of a run: `count` of them, prompts of 400 to 1,199 tokens, 300 output each.
pub fn workload(count: u64) -> Vec<(u64, u64)> {
    (0..count).map(|i| (400 + (i * 37) % 800, 300)).collect()
}

/// What the mock charges for `sizes`: prompt plus `max_tokens` each.
pub fn charged(sizes: &[(u64, u64)]) -> u64 {
    sizes.iter().map(|(p, m)| p + m).sum()
}

/// The earliest instant by which token buckets of `deployments` (tokens per minute, and when
/// each becomes available with a full bucket) can have admitted `tokens` in all: the pooled
/// minimum makespan, whatever the routing.
pub fn pooled_minimum(tokens: u64, deployments: &[(u64, Duration)]) -> Duration {
    let admitted_by = |t: f64| -> f64 {
        deployments
            .iter()
            .filter(|(_, from)| t >= from.as_secs_f64())
            .map(|&(tpm, from)| tpm as f64 * (1.0 + (t - from.as_secs_f64()) / 60.0))
            .sum()
    };
    let (mut low, mut high) = (0.0f64, 1.0e6f64);
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if admitted_by(mid) >= tokens as f64 {
            high = mid;
        } else {
            low = mid;
        }
    }
    Duration::from_secs_f64(high)
}

/// Tokens each provider admitted, in the fleet's order.
pub fn admitted_tokens(fleet: &Fleet) -> Vec<u64> {
    fleet
        .providers
        .iter()
        .map(|(_, p)| p.stats().admitted_tokens)
        .collect()
}
