//! `#[rate_limited(pool = .., deployment = ..)]` end to end, in paused time, against three
//! `MockProvider`s of 100k, 50k and 20k TPM (`tests/pool_support`): the body reaches the mock of
//! the deployment each attempt was admitted on through the binding, so what every mock served
//! is what the pool admitted there; a 429 moves the retry to another deployment with the
//! binding changed; a streamed pool call holds and settles its reservation on its deployment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::pool::{Deployment, DeploymentConfig, PoolConfig};
use ratelimited::stream::RateLimitedStream;
use ratelimited::testing::{
    Fault, MockLimits, MockProvider, MockRequest, MockResponse, MockStream, StreamPacing,
};
use ratelimited::tokens::{count_tokens, Encoding};
use ratelimited::{rate_limited, Quota, Registry};
use tokio::time::Instant;

mod pool_support;
use pool_support::*;

/// The mocks by deployment name, and the deployment each attempt's body saw, in order.
#[derive(Default)]
struct Mocks {
    providers: Vec<(String, MockProvider)>,
    seen: Mutex<Vec<String>>,
}

impl Mocks {
    fn of(fleet: &Fleet) -> Arc<Mocks> {
        Arc::new(Mocks {
            providers: fleet.providers.clone(),
            seen: Mutex::default(),
        })
    }

    /// The mock serving `deployment`, noting that a body was sent there.
    fn at(&self, deployment: &Deployment) -> &MockProvider {
        self.seen.lock().unwrap().push(deployment.name().to_owned());
        &self
            .providers
            .iter()
            .find(|(name, _)| name == deployment.name())
            .expect("a mock per deployment")
            .1
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tokens = prompt, max_tokens = max_tokens)]
async fn chat(mocks: &Mocks, prompt: u64, max_tokens: u64) -> Result<MockResponse, ApiError> {
    let request = MockRequest::new("gpt-4o", prompt).max_tokens(max_tokens);
    mocks
        .at(deployment)
        .chat(&request)
        .await
        .map_err(ApiError::Http)
}

#[tokio::test(start_paused = true)]
async fn every_body_is_sent_where_its_attempt_was_admitted_with_no_429() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let _scope = fleet.registry.scope();
    let mocks = Mocks::of(&fleet);
    let sizes = workload(300);
    let start = Instant::now();
    let calls: Vec<_> = sizes
        .iter()
        .map(|&(prompt, max_tokens)| {
            let mocks = Arc::clone(&mocks);
            tokio::spawn(async move { chat(&mocks, prompt, max_tokens).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }
    let makespan = start.elapsed();

    let stats = fleet.registry.stats();
    let seen = mocks.seen();
    assert_eq!(seen.len(), sizes.len(), "one attempt per call: {seen:?}");
    let mut served = Vec::new();
    for (name, provider) in &fleet.providers {
        let family = stats.family(name).expect("a family per deployment");
        let mock = provider.stats();
        assert_eq!(mock.rate_limited, 0, "{name} answered a 429");
        provider.assert_within_limits();
        // What the pool admitted on a deployment is exactly what its mock served: every body
        // went where its attempt was admitted, and settled there.
        assert_eq!(mock.calls, family.admitted, "{name}: calls");
        assert_eq!(
            seen.iter().filter(|s| *s == name).count() as u64,
            family.admitted,
            "{name}: bodies"
        );
        assert_eq!(
            mock.admitted_tokens, family.charged_tokens,
            "{name}: tokens"
        );
        assert_eq!(family.in_flight, 0);
        assert!(family.admitted > 0, "{name} took no call");
        served.push(family.admitted);
    }
    let total = charged(&sizes);
    let limits: Vec<(u64, Duration)> = DEPLOYMENTS
        .iter()
        .map(|&(_, tpm)| (tpm, Duration::ZERO))
        .collect();
    let minimum = pooled_minimum(total, &limits);
    println!(
        "300 attributed calls, {total} tokens: calls per deployment {served:?}, makespan {:.3} \
         s, pooled minimum {:.3} s",
        makespan.as_secs_f64(),
        minimum.as_secs_f64()
    );
    assert!(makespan >= minimum);
    assert!(makespan.as_secs_f64() <= 1.02 * minimum.as_secs_f64());
}

#[tokio::test(start_paused = true)]
async fn a_429_moves_the_retry_to_another_deployment_and_the_binding_with_it() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let _scope = fleet.registry.scope();
    // East answers 429 for its first 30 s, with `retry-after-ms` saying so.
    fleet.provider("east").inject(Fault::RateLimitStorm {
        until: Duration::from_secs(30),
    });
    let mocks = Mocks::of(&fleet);
    let start = Instant::now();
    let response = chat(&mocks, 1_000, 200).await.expect("retried elsewhere");
    assert_eq!(mocks.seen(), ["east", "west"]);
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait for east's hint");
    assert_eq!(response.prompt_tokens, 1_000);

    let stats = fleet.registry.stats();
    let east = stats.family("east").unwrap();
    assert_eq!(east.rate_limited, 1);
    assert_eq!(east.charged_tokens, 0, "a 429's tokens go back");
    assert_eq!(fleet.provider("east").stats().rate_limited, 1);
    let west = stats.family("west").unwrap();
    assert_eq!(
        (west.admitted, fleet.provider("west").stats().calls),
        (1, 1)
    );
    assert_eq!(
        west.charged_tokens,
        fleet.provider("west").stats().admitted_tokens
    );

    // East is held for its hint alone: the next call goes to west too, then east after 30 s.
    chat(&mocks, 1_000, 200).await.unwrap();
    tokio::time::sleep_until(start + Duration::from_secs(30)).await;
    chat(&mocks, 1_000, 200).await.unwrap();
    assert_eq!(mocks.seen(), ["east", "west", "west", "east"]);
}

/// A prompt estimated from the arguments, as for a `model` call: with the deployments'
/// tokenizer, and the character count Azure charges when it is higher.
#[rate_limited(pool = "gpt-4o", deployment = deployment, max_tokens = 100, retries = 0)]
async fn summarize(mocks: &Mocks, prompt: &str) -> Result<MockResponse, ApiError> {
    let request = MockRequest::text("gpt-4o", prompt).max_tokens(100);
    mocks
        .at(deployment)
        .chat(&request)
        .await
        .map_err(ApiError::Http)
}

#[tokio::test(start_paused = true)]
async fn the_prompt_is_estimated_from_the_arguments_with_the_deployments_tokenizer() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let _scope = fleet.registry.scope();
    let mocks = Mocks::of(&fleet);
    let prompt = "Summarize the quarterly report in three short bullet points. ".repeat(20);
    summarize(&mocks, &prompt).await.unwrap();
    let east = fleet.registry.stats();
    let east = east.family("east").unwrap();
    let tokens = count_tokens(Encoding::O200kBase, &prompt);
    let by_characters = (prompt.len() as u64).div_ceil(4);
    assert_eq!(east.reserved_tokens, tokens.max(by_characters) + 100);
    assert_eq!(east.estimated_input_tokens, tokens.max(by_characters));
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tokens = prompt, max_tokens = 300, stream)]
async fn stream_chat(
    mocks: &Mocks,
    prompt: u64,
) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let request = MockRequest::new("gpt-4o", prompt).max_tokens(300);
    let pacing = StreamPacing::new(10, Duration::from_millis(500));
    let stream = mocks
        .at(deployment)
        .chat_stream(&request, pacing)
        .await
        .map_err(ApiError::Http)?;
    Ok(stream)
}

#[tokio::test(start_paused = true)]
async fn a_streamed_pool_call_holds_and_settles_on_its_deployment() {
    let fleet = Fleet::new(&DEPLOYMENTS, None);
    let _scope = fleet.registry.scope();
    // The first attempt meets a 429 on east before any chunk: retried on west.
    fleet.provider("east").inject(Fault::RateLimitStorm {
        until: Duration::from_secs(30),
    });
    let mocks = Mocks::of(&fleet);
    let start = Instant::now();
    let mut stream = stream_chat(&mocks, 2_000).await.expect("a stream");
    assert_eq!(mocks.seen(), ["east", "west"]);
    assert!(stream.is_holding());
    let west = || fleet.registry.stats().family("west").cloned().unwrap();
    assert_eq!(west().in_flight, 1, "held on west while the stream runs");
    assert_eq!(west().reserved_tokens, 2_300);
    let west_limiter = fleet.registry.pool("gpt-4o").unwrap();
    let west_limiter = west_limiter.deployment("west").unwrap().limiter();
    let in_use = || {
        west_limiter
            .in_use(ratelimited::limiter::Dimension::TokensPerMinute)
            .unwrap()
    };
    assert_eq!(in_use(), 2_300);

    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
        chunks += 1;
    }
    assert_eq!(chunks, 11, "ten content chunks and the usage chunk");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(!stream.is_holding());
    let usage = stream.usage().expect("the usage chunk");
    assert_eq!(usage.input_tokens, 2_000);

    let stats = fleet.registry.stats();
    let west = stats.family("west").unwrap();
    let mock = fleet.provider("west").stats();
    assert_eq!((west.in_flight, west.reported_calls), (0, 1));
    assert_eq!(west.reported_input_tokens, 2_000);
    assert_eq!(west.reported_output_tokens, usage.output_tokens);
    // Settled where it ran, to what that deployment's server charged.
    assert_eq!(west.charged_tokens, mock.admitted_tokens);
    for name in ["east", "north"] {
        let family = stats.family(name).unwrap();
        assert_eq!((family.in_flight, family.charged_tokens), (0, 0), "{name}");
    }
}

#[rate_limited(pool = "pair", deployment = deployment, tokens = 100, max_tokens = 100, stream)]
async fn open_stream(
    mocks: &Mocks,
    chunks: u32,
) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let request = MockRequest::new("gpt-4o", 100).max_tokens(100);
    let pacing = StreamPacing::new(chunks, Duration::from_secs(1));
    let stream = mocks
        .at(deployment)
        .chat_stream(&request, pacing)
        .await
        .map_err(ApiError::Http)?;
    Ok(stream)
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_ends_lets_the_pools_waiting_call_onto_its_deployment() {
    // Two deployments of one request in flight each.
    let deployment = |name: &str| {
        DeploymentConfig::new(name, "azure/gpt-4o")
            .quota(Quota::default().rpm(RPM).tpm(100_000).concurrency(1))
    };
    let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]).with_pool(
        PoolConfig::new("pair")
            .deployment(deployment("a"))
            .deployment(deployment("b")),
    );
    let _scope = registry.scope();
    let mocks = Arc::new(Mocks {
        providers: ["a", "b"]
            .map(|name| {
                (
                    name.to_owned(),
                    MockProvider::new(MockLimits::new(RPM, 100_000)),
                )
            })
            .into(),
        seen: Mutex::default(),
    });
    let start = Instant::now();
    // a: a stream of 60 s; b: one of 2 s.
    let long = open_stream(&mocks, 60).await.unwrap();
    let short = open_stream(&mocks, 2).await.unwrap();
    assert_eq!(mocks.seen(), ["a", "b"]);
    let long = tokio::spawn(long.map(Result::unwrap).count());
    // A third call waits at the head of the pool for a slot; both are held.
    let third = {
        let mocks = Arc::clone(&mocks);
        tokio::spawn(async move {
            let stream = open_stream(&mocks, 1).await.unwrap();
            (Instant::now(), stream)
        })
    };
    let drained = short.map(Result::unwrap).collect::<Vec<_>>().await;
    assert_eq!(drained.len(), 3);
    let (admitted_at, _stream) = third.await.unwrap();
    // b's slot freed at 2 s, and the pool heard of it then: the third call went to b at once,
    // not to a when its 60 s stream ends.
    assert_eq!(admitted_at - start, Duration::from_secs(2));
    assert_eq!(mocks.seen(), ["a", "b", "b"]);
    assert_eq!(long.await.unwrap(), 61);
}

/// The README's pool function (`tests/pool_support/readme_chat.rs`, character for character)
/// over real HTTP on loopback: two `MockServer`s as two deployments of a pool defined by the
/// environment, each reached at its `RATE_LIMITED_<DEPLOYMENT>_ENDPOINT`.
#[cfg(all(feature = "reqwest", feature = "mock-server"))]
mod readme {
    use ratelimited::testing::{fresh_registry_with_env, MockLimits, MockServer};
    use serde_json::json;

    include!("pool_support/readme_chat.rs");

    #[tokio::test]
    async fn the_readme_pool_function_sends_each_call_to_its_deployment() {
        // The test build of reqwest has no default TLS provider; plain HTTP still wants one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let east = MockServer::start(MockLimits::new(6_000, 24_000))
            .await
            .unwrap();
        let west = MockServer::start(MockLimits::new(6_000, 12_000))
            .await
            .unwrap();
        let _registry = fresh_registry_with_env([
            ("RATE_LIMITED_POOL_GPT_4O", "east,west".to_owned()),
            ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o".to_owned()),
            ("RATE_LIMITED_EAST_RPM", "6000".to_owned()),
            ("RATE_LIMITED_EAST_TPM", "24000".to_owned()),
            ("RATE_LIMITED_EAST_ENDPOINT", east.base_url()),
            ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o".to_owned()),
            ("RATE_LIMITED_WEST_RPM", "6000".to_owned()),
            ("RATE_LIMITED_WEST_TPM", "12000".to_owned()),
            ("RATE_LIMITED_WEST_ENDPOINT", west.base_url()),
        ]);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let requests: Vec<Value> = (0..30)
            .map(|i| {
                json!({
                    "model": "gpt-4o",
                    "messages": [{"role": "user", "content": format!("Summarize report {i}.")}],
                    "max_tokens": 1_000,
                })
            })
            .collect();
        let answers =
            futures_util::future::join_all(requests.iter().map(|request| chat(&http, request)))
                .await;
        for answer in &answers {
            let answer = answer.as_ref().expect("every call succeeds");
            assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        }
        let stats = ratelimited::stats::snapshot();
        for (name, server) in [("east", &east), ("west", &west)] {
            let served = server.provider().stats();
            let family = stats.family(name).unwrap();
            assert_eq!(served.rate_limited, 0, "{name}: {served:?}");
            assert_eq!(served.admitted, family.admitted, "{name}: {served:?}");
            assert!(served.admitted > 0, "{name} served nothing");
            server.provider().assert_within_limits();
        }
        east.shutdown().await;
        west.shutdown().await;
    }
}

/// The function above is the README's, character for character.
#[test]
fn the_readme_shows_the_pool_function() {
    let function = include_str!("pool_support/readme_chat.rs");
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("```rust\n{function}```")),
        "README.md has no ```rust block equal to:\n{function}"
    );
}
