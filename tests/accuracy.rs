//! Zero 429s against servers that count differently from tiktoken: a server that charges
//! OpenAI's character-based prompt estimate, a server whose real limits are half the
//! configured tier, and the opening burst before the first response. All in paused time.

use std::time::Duration;

use ratelimited::rate_limited;
use ratelimited::testing::{
    fresh_registry_with_env, spawn_scoped, MockLimits, MockProvider, MockRequest, MockResponse,
};
use ratelimited::tokens::{count_tokens, Encoding};
use ratelimited::{
    limiter::Cost, CallError, Classify, Limiter, Quota, Registry, ReportUsage, Usage,
};
use tokio::time::Instant;

const MODEL: &str = "gpt-4o-mini";
const MAX_TOKENS: u64 = 50;
const RPM: u64 = 500;
const TPM: u64 = 40_000;
const PROMPTS: usize = 300;

/// 300 prompts of four kinds: English prose and indented code (where the character estimate is
/// above tiktoken's count: whitespace runs are one token), CJK text and repeated short words
/// (below it).
fn mixed_prompts() -> Vec<String> {
    const PROSE: &str = "The committee reviewed the proposal carefully and concluded that the \
        benefits of the new transportation policy outweighed its costs, although several \
        members expressed concerns about implementation timelines and funding. ";
    const CODE: &str = "class Ledger:\n    def settle(self, entries):\n        for entry in entries:\n            if entry.amount > 0:\n                self.total += entry.amount\n            else:\n                self.refunds.append(entry)\n        return self.total\n\n";
    const CJK: &str = "東京は日本の首都であり、多くの人々が毎日電車で通勤しています。";
    const SHORT: &str = "go to it and do so if we ";
    (0..PROMPTS)
        .map(|i| {
            let repeats = 4 + i % 9;
            let base = match i % 4 {
                0 => PROSE,
                1 => CODE,
                2 => CJK,
                _ => SHORT,
            };
            base.repeat(repeats * if i % 4 == 3 { 6 } else { 1 })
        })
        .collect()
}

fn limits_env(headroom: &str, learn: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RATE_LIMITED_GPT_4O_MINI_RPM", RPM.to_string()),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", TPM.to_string()),
        ("RATE_LIMITED_HEADROOM", headroom.to_owned()),
    ];
    if learn {
        env.push(("RATE_LIMITED_LEARN_LIMITS", "1".to_owned()));
    }
    env
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 50, retries = 20)]
async fn ask(provider: &MockProvider, prompt: &str) -> Result<MockResponse, CallError> {
    provider
        .chat(&MockRequest::text(MODEL, prompt).max_tokens(MAX_TOKENS))
        .await
        .map_err(CallError::from)
}

/// Sends every prompt at once through `#[rate_limited]` and returns the 429s the server gave.
async fn run_annotated(provider: &MockProvider, prompts: Vec<String>) -> usize {
    let tasks: Vec<_> = prompts
        .into_iter()
        .map(|prompt| {
            let provider = provider.clone();
            spawn_scoped(async move { ask(&provider, &prompt).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every call succeeds in the end");
    }
    provider.stats().rate_limited as usize
}

/// The same batch through a bare limiter that reserves tiktoken's count only, settles to the
/// reported usage and tightens to the headers when the limits match: the limiter before
/// these rules.
async fn run_tiktoken_only(provider: &MockProvider, prompts: Vec<String>, headroom: f64) -> usize {
    let limiter = Limiter::new(Quota::default().rpm(RPM).tpm(TPM).headroom(headroom));
    let tasks: Vec<_> = prompts
        .into_iter()
        .map(|prompt| {
            let provider = provider.clone();
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let tokens = count_tokens(Encoding::O200kBase, &prompt);
                let request = MockRequest::text(MODEL, &prompt).max_tokens(MAX_TOKENS);
                loop {
                    let reservation = limiter
                        .acquire(Cost::request(tokens, MAX_TOKENS))
                        .await
                        .unwrap();
                    match provider.chat(&request).await {
                        Ok(response) => {
                            let usage = response.usage().unwrap();
                            reservation.settle(Usage::new(usage.input_tokens, MAX_TOKENS));
                            let headers = response.rate_limit_headers();
                            if let (Some(limit), Some(left)) =
                                (headers.limit_tokens, headers.remaining_tokens)
                            {
                                limiter.tighten(
                                    ratelimited::limiter::Dimension::TokensPerMinute,
                                    limit - left,
                                );
                            }
                            return;
                        }
                        Err(error) => {
                            reservation.settle(Usage::default());
                            let wait = error.classify().retry_after().unwrap();
                            limiter.hold_for(wait);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    provider.stats().rate_limited as usize
}

fn character_server() -> MockProvider {
    MockProvider::new(MockLimits::new(RPM, TPM))
        .charge_prompt_by_characters(true)
        .latency(Duration::from_millis(800))
}

#[tokio::test(start_paused = true)]
async fn a_character_charging_server_sees_at_most_one_429_in_300() {
    let prompts = mixed_prompts();
    let prose = &prompts[0];
    assert!(
        prose.len() as u64 / 4 > count_tokens(Encoding::O200kBase, prose),
        "the prose must be where the server charges more than tiktoken counts"
    );

    let without = run_tiktoken_only(&character_server(), prompts.clone(), 0.95).await;

    let _registry = fresh_registry_with_env(limits_env("0.95", false));
    let server = character_server();
    let with = run_annotated(&server, prompts).await;
    println!("character-estimate server, 300 mixed prompts at headroom 0.95:");
    println!("  429s with the estimate rules: {with}");
    println!("  429s reserving tiktoken's count only: {without}");
    assert!(with <= 1, "{with} 429s with the rules");
    assert!(without > with, "without the rules: {without}, with: {with}");
    server.assert_within_limits();
    assert_eq!(server.stats().admitted as usize, PROMPTS);
}

#[tokio::test(start_paused = true)]
async fn a_server_at_half_the_tier_sees_at_most_one_percent_429s() {
    let _registry = fresh_registry_with_env(limits_env("0.95", false));
    let server = MockProvider::new(MockLimits::new(RPM / 2, TPM / 2))
        .charge_prompt_by_characters(true)
        .latency(Duration::from_millis(800));
    let rejected = run_annotated(&server, mixed_prompts()).await;
    println!("server at half the configured tier: {rejected} 429s of {PROMPTS}");
    assert!(rejected * 100 <= PROMPTS, "{rejected} 429s");
    // Lower limits are adopted without learning: they only make the limiter safer.
    let quota = Registry::current().limiter(MODEL).unwrap().limiter.quota();
    assert_eq!((quota.rpm, quota.tpm), (Some(RPM / 2), Some(TPM / 2)));
}

#[tokio::test(start_paused = true)]
async fn learned_limits_equal_the_servers_after_the_first_response() {
    for (server_rpm, server_tpm) in [(RPM / 2, TPM / 2), (RPM * 2, TPM * 2)] {
        let _registry = fresh_registry_with_env(limits_env("0.9", true));
        let server = MockProvider::new(MockLimits::new(server_rpm, server_tpm));
        ask(&server, "hello there").await.unwrap();
        let quota = Registry::current().limiter(MODEL).unwrap().limiter.quota();
        assert_eq!((quota.rpm, quota.tpm), (Some(server_rpm), Some(server_tpm)));
    }
}

#[tokio::test(start_paused = true)]
async fn higher_server_limits_are_ignored_unless_learning() {
    let _registry = fresh_registry_with_env(limits_env("0.9", false));
    let server = MockProvider::new(MockLimits::new(RPM * 2, TPM * 2));
    ask(&server, "hello there").await.unwrap();
    let quota = Registry::current().limiter(MODEL).unwrap().limiter.quota();
    assert_eq!((quota.rpm, quota.tpm), (Some(RPM), Some(TPM)));

    let registry = Registry::with_env(limits_env("0.9", false)).learn_limits(true);
    let _scope = registry.scope();
    ask(&server, "hello there").await.unwrap();
    let quota = registry.limiter(MODEL).unwrap().limiter.quota();
    assert_eq!((quota.rpm, quota.tpm), (Some(RPM * 2), Some(TPM * 2)));
}

#[rate_limited(model = "gpt-4o-mini", tokens = 500, max_tokens = 500)]
async fn thousand_tokens(provider: &MockProvider) -> Result<MockResponse, CallError> {
    provider
        .chat(&MockRequest::new(MODEL, 500).max_tokens(500))
        .await
        .map_err(CallError::from)
}

#[tokio::test(start_paused = true)]
async fn before_the_first_response_only_a_quarter_of_the_bucket_goes() {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "1000"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "10000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let server = MockProvider::new(MockLimits::new(1_000, 10_000)).latency(Duration::from_secs(2));
    let start = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let server = server.clone();
            spawn_scoped(async move { thousand_tokens(&server).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // A quarter of 10,000 tokens is 2,500: two 1,000-token calls, then the rest once the first
    // answer is in, 2 s later (the bucket still holds 8,000 then).
    let at: Vec<Duration> = server
        .admissions()
        .iter()
        .map(|a| a.at.duration_since(start))
        .collect();
    let mut expected = vec![Duration::ZERO; 2];
    expected.extend([Duration::from_secs(2); 8]);
    assert_eq!(at, expected);
    assert_eq!(server.stats().rate_limited, 0);
}

#[tokio::test(start_paused = true)]
async fn azure_caps_requests_per_second_by_default() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_MY_DEPLOYMENT_TPM", "100000")]);
    let quota = Registry::current()
        .limiter("azure/my-deployment")
        .unwrap()
        .limiter
        .quota();
    // 100k TPM is 600 RPM on Azure, checked as 10 requests per second.
    assert_eq!((quota.rpm, quota.rps), (Some(600), Some(10)));

    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_MY_DEPLOYMENT_TPM", "100000"),
        ("RATE_LIMITED_MY_DEPLOYMENT_BURST", "unlimited"),
        ("RATE_LIMITED_GPT_4O_BURST", "20"),
    ]);
    let registry = Registry::current();
    assert_eq!(
        registry
            .limiter("azure/my-deployment")
            .unwrap()
            .limiter
            .quota()
            .rps,
        None
    );
    assert_eq!(
        registry.limiter("gpt-4o").unwrap().limiter.quota().rps,
        Some(20)
    );
    let error = Registry::with_env([("RATE_LIMITED_GPT_4O_BURST", "10/s")])
        .limiter("gpt-4o")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("RATE_LIMITED_GPT_4O_BURST") && error.contains("requests per second"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_burst_cap_spreads_a_minute_of_requests_over_seconds() {
    let limiter = Limiter::new(Quota::default().rpm(600).rps(10));
    let start = Instant::now();
    for _ in 0..30 {
        limiter.acquire(Cost::request(0, 0)).await.unwrap().keep();
    }
    // 10 at once, then one every 100 ms: the 30th at 2 s, not all 30 at 0.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}
