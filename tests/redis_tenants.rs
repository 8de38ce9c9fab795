//! Tenants of a family shared by several processes through a real `redis-server` (issue 21):
//! a tenant's cap lives in Redis beside the family's buckets and is charged in the same script
//! call, so the fleet together keeps it; a tenant at its cap holds nobody else back; settles
//! give back to the cap; and each process's waiters go to Redis in tenant turns. Each limiter
//! stands for one process.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ratelimited::limiter::{Cost, Dimension};
use ratelimited::redis::RedisConfig;
use ratelimited::testing::{MockLimits, MockProvider, MockRequest, MockResponse};
use ratelimited::{rate_limited, Error, Limiter, Priority, Quota, Registry, Tenant, Usage};

mod common;
use common::ApiError;

mod redis_support;
use redis_support::{eventually, shared_limiter, RedisServer};

const MODEL: &str = "tenant-model";
const TAG: &str = "ratelimited:{openai:tenant-model:tier-1}";

/// The family has room for everyone (60,000 TPM); every tenant is capped at 600 TPM.
const VARS: [(&str, &str); 2] = [
    ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
    ("RATE_LIMITED_TENANT_MODEL_TENANT_TPM", "600"),
];

/// One process's limiter of the family, with `vars` at headroom 1.
fn limiter(redis: &RedisServer, vars: &[(&str, &str)]) -> Limiter {
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_secs(2));
    shared_limiter(config, MODEL, vars)
}

/// How long, in ms, the tenant's cap key on `dimension` has to live: the time its bucket
/// takes to be full again (`None`: no key, the cap is full).
fn cap_ttl_ms(redis: &RedisServer, tenant: &str, dimension: &str) -> Option<i64> {
    let key = format!("{TAG}:tenant:{tenant}:{dimension}");
    let ttl: i64 = redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    (ttl > 0).then_some(ttl)
}

async fn admitted_now(
    limiter: &Limiter,
    tokens: u64,
    tenant: &str,
) -> ratelimited::limiter::Reservation {
    let acquire = limiter.acquire_for(
        Cost::request(tokens, 0),
        Priority::Normal,
        &Tenant::from(tenant),
    );
    let reservation = tokio::time::timeout(Duration::from_secs(5), acquire)
        .await
        .unwrap_or_else(|_| panic!("{tokens} tokens for {tenant} were not admitted"))
        .unwrap();
    let start = reservation.shared_start().expect("charged in Redis");
    assert!(
        start <= SystemTime::now() + Duration::from_millis(500),
        "{tenant}'s {tokens} tokens were scheduled ahead"
    );
    reservation
}

/// One process spends tenant `acme`'s whole cap; another process's next request for `acme`
/// waits for the cap to refill, while its requests for `globex` go at once. What the cap
/// charged is in Redis under the family's hash tag, with an expiry: the 600 tokens refill in a
/// minute.
#[tokio::test]
async fn a_tenant_at_its_cap_on_one_process_waits_on_another_while_others_go() {
    let redis = RedisServer::start();
    let (a, b) = (limiter(&redis, &VARS), limiter(&redis, &VARS));
    assert_eq!(
        b.tenant_cap(&Tenant::from("acme")),
        Some(Quota::default().tpm(600))
    );
    admitted_now(&a, 600, "acme").await.keep();
    let ttl = cap_ttl_ms(&redis, "acme", "tpm").expect("acme's cap is in Redis");
    assert!((58_000..=60_000).contains(&ttl), "{ttl} ms");

    let capped = {
        let b = b.clone();
        tokio::spawn(async move {
            b.acquire_for(
                Cost::request(300, 0),
                Priority::Normal,
                &Tenant::from("acme"),
            )
            .await
        })
    };
    // Behind acme's capped request in B's queue, globex goes at once: twice over.
    admitted_now(&b, 600, "globex").await.keep();
    admitted_now(&a, 300, "initech").await.keep();
    assert!(!capped.is_finished(), "acme went past its cap");
    assert!(cap_ttl_ms(&redis, "globex", "tpm").is_some());
    capped.abort();

    // Larger than the cap itself: refused at once, on either process.
    let too_large = a
        .acquire_for(
            Cost::request(601, 0),
            Priority::Normal,
            &Tenant::from("acme"),
        )
        .await;
    assert!(
        matches!(
            too_large,
            Err(Error::RequestTooLarge {
                dimension: Dimension::TokensPerMinute,
                requested: 601,
                capacity: 600
            })
        ),
        "{too_large:?}"
    );
    let uncapped = Tenant::from("vip");
    b.set_tenant_cap(&uncapped, None).unwrap();
    admitted_now(&b, 5_000, "vip").await.keep();
    assert_eq!(cap_ttl_ms(&redis, "vip", "tpm"), None, "no cap, no key");
}

/// A capped request is admitted once its cap has room again, not before: at 10 tokens a
/// second, the 10 tokens after a spent cap start about a second after the charge that spent it.
#[tokio::test]
async fn a_capped_tenant_goes_when_its_shared_cap_has_refilled() {
    let redis = RedisServer::start();
    let (a, b) = (limiter(&redis, &VARS), limiter(&redis, &VARS));
    let first = admitted_now(&a, 600, "acme").await;
    let spent_at = first.shared_start().unwrap();
    first.keep();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        b.acquire_for(
            Cost::request(10, 0),
            Priority::Normal,
            &Tenant::from("acme"),
        ),
    )
    .await
    .expect("acme's 10 tokens were never admitted")
    .unwrap();
    let after = next
        .shared_start()
        .unwrap()
        .duration_since(spent_at)
        .unwrap();
    println!("acme's next 10 tokens started {after:?} after its cap was spent");
    assert!(
        after >= Duration::from_millis(990) && after < Duration::from_secs(3),
        "{after:?}"
    );
    assert_eq!(next.tenant(), Some(&Tenant::from("acme")));
}

/// A settle gives back to the tenant's cap what its request did not use: 600 reserved, 100
/// used, and another process's 500 for the same tenant go at once.
#[tokio::test]
async fn a_settle_gives_back_to_the_shared_cap() {
    let redis = RedisServer::start();
    let (a, b) = (limiter(&redis, &VARS), limiter(&redis, &VARS));
    let reservation = admitted_now(&a, 600, "acme").await;
    reservation.settle(Usage::new(100, 0));
    eventually("the settle on acme's cap", || {
        cap_ttl_ms(&redis, "acme", "tpm").is_some_and(|ttl| ttl <= 10_000)
    })
    .await;
    admitted_now(&b, 500, "acme").await.keep();
}

/// A reservation cancelled before it is used gives its whole charge back to the cap.
#[tokio::test]
async fn a_cancelled_reservation_gives_back_to_the_shared_cap() {
    let redis = RedisServer::start();
    let (a, b) = (limiter(&redis, &VARS), limiter(&redis, &VARS));
    admitted_now(&a, 600, "acme").await.cancel();
    eventually("the refund on acme's cap", || {
        cap_ttl_ms(&redis, "acme", "tpm").is_none()
    })
    .await;
    admitted_now(&b, 600, "acme").await.keep();
}

/// Queues `heavy` requests of tenant `import` on `import_on`, then one of tenant `user` on
/// `user_on` once two went through; the family admits 10 requests a second (600 RPM, spent
/// to start with). The light one must be admitted within two admissions of its arrival.
async fn light_behind_heavy(label: &str, import_on: &Limiter, user_on: &Limiter, heavy: usize) {
    import_on.tighten(Dimension::RequestsPerMinute, 600);
    let admitted = Arc::new(Mutex::new(Vec::new()));
    let ask = |limiter: &Limiter, tenant: &'static str| {
        let (limiter, admitted) = (limiter.clone(), Arc::clone(&admitted));
        tokio::spawn(async move {
            let reservation = limiter
                .acquire_for(Cost::request(1, 0), Priority::Normal, &Tenant::from(tenant))
                .await
                .unwrap();
            admitted.lock().unwrap().push(tenant);
            reservation.keep();
        })
    };
    let queued: Vec<_> = (0..heavy).map(|_| ask(import_on, "import")).collect();
    eventually("the first admissions", || {
        admitted.lock().unwrap().len() >= 2
    })
    .await;
    let before = admitted.lock().unwrap().len();
    let light = ask(user_on, "user");
    tokio::time::timeout(Duration::from_secs(5), light)
        .await
        .expect("the light tenant was not admitted")
        .unwrap();
    let at = admitted
        .lock()
        .unwrap()
        .iter()
        .position(|&t| t == "user")
        .unwrap();
    for task in queued {
        task.abort();
    }
    println!(
        "{label}: the light tenant arrived after {before} admissions, admitted as number {}",
        at + 1
    );
    assert!(at <= before + 2, "admitted after {at} of the import's");
}

/// Within one process, waiters go to Redis in tenant turns: a tenant with one request that
/// arrives behind another tenant's 30 queued is admitted at the next admission but one (the
/// one Redis has scheduled ahead already), not after the 30.
#[tokio::test]
async fn a_light_tenant_is_not_queued_behind_a_heavy_one_in_a_process() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, &[("RATE_LIMITED_TENANT_MODEL_RPM", "600")]);
    light_behind_heavy("one process", &limiter, &limiter, 30).await;
}

/// Across processes the turns are approximate: each process has at most one request
/// scheduled ahead in Redis, so the processes interleave by arrival. A light tenant on another
/// process than the heavy one's queue is admitted within about one admission per process.
#[tokio::test]
async fn a_light_tenant_on_another_process_is_not_queued_behind_a_heavy_one() {
    let redis = RedisServer::start();
    let vars = [("RATE_LIMITED_TENANT_MODEL_RPM", "600")];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    light_behind_heavy("two processes", &a, &b, 30).await;
}

/// Caps Redis cannot keep are configuration errors, not limits silently kept per process.
#[tokio::test]
async fn a_tenant_concurrency_cap_through_redis_is_a_configuration_error() {
    let redis = RedisServer::start();
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_secs(2));
    let err = config
        .registry_with_env([
            ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
            ("RATE_LIMITED_TENANT_MODEL_TENANT_CONCURRENCY", "2"),
        ])
        .limiter_with(MODEL, Some("openai"), None)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("RATE_LIMITED_TENANT_MODEL_TENANT_CONCURRENCY"),
        "{message}"
    );
    let limiter = limiter(&redis, &VARS[..1]);
    let err = limiter
        .set_tenant_cap(&Tenant::from("acme"), Some(Quota::default().concurrency(1)))
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert_eq!(limiter.tenant_cap(&Tenant::from("acme")), None);
}

#[rate_limited(model = "tenant-model", provider = "openai", tenant = user, tokens = 10, max_tokens = 0)]
async fn ask(provider: &MockProvider, user: &str) -> Result<MockResponse, ApiError> {
    let _ = user;
    provider
        .chat(&MockRequest::new(MODEL, 10).max_tokens(0))
        .await
        .map_err(ApiError::Http)
}

/// Reserves 10 prompt tokens and 15 of output; the answer uses fewer.
#[rate_limited(model = "tenant-model", provider = "openai", tenant = user, tokens = 10, max_tokens = 15)]
async fn ask_long(provider: &MockProvider, user: &str) -> Result<MockResponse, ApiError> {
    let _ = user;
    provider
        .chat(&MockRequest::new(MODEL, 10).max_tokens(15))
        .await
        .map_err(ApiError::Http)
}

/// One process's registry with every tenant's budget at 25 tokens (`period`: `total` or `day`).
fn budget_registry(redis: &RedisServer, period: &str) -> Registry {
    let config = RedisConfig::new(redis.url()).timeout(Duration::from_secs(2));
    config.registry_with_env([
        ("RATE_LIMITED_TENANT_MODEL_RPM", "600"),
        ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_TOKENS", "25"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_PERIOD", period),
        ("RATE_LIMITED_HEADROOM", "1"),
    ])
}

/// What the fleet holds and spent of `tenant`'s budget, in tokens.
fn budget_spent(redis: &RedisServer, tenant: &str) -> u64 {
    let key = format!("ratelimited:{{openai:tenant-model}}:budget:{tenant}");
    redis.cli(&["HGET", &key, "t"]).trim().parse().unwrap_or(0)
}

/// A tenant's budget is the fleet's: 25 tokens, one call of 10 on each of two processes, and
/// the third call, on either, is refused naming the tenant with 5 tokens left, before anything
/// is sent. Another tenant goes on; the settles leave the fleet's count at what was used.
#[tokio::test]
async fn a_tenant_budget_is_spent_once_by_the_whole_fleet() {
    let redis = RedisServer::start();
    let (a, b) = (
        budget_registry(&redis, "total"),
        budget_registry(&redis, "total"),
    );
    let provider = MockProvider::new(MockLimits::new(100_000, 10_000_000));
    a.bind(ask(&provider, "acme")).await.unwrap();
    b.bind(ask(&provider, "acme")).await.unwrap();
    assert_eq!(budget_spent(&redis, "acme"), 20);
    let error = a.bind(ask(&provider, "acme")).await.unwrap_err();
    let ApiError::Limiter(Error::BudgetExhausted {
        budget,
        remaining,
        requested,
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(budget, "the openai/tenant-model tenant `acme` token budget");
    assert_eq!(remaining.to_string(), "5 tokens");
    assert_eq!(requested.to_string(), "10 tokens");
    assert_eq!(
        provider.stats().admitted,
        2,
        "nothing sent for the refused call"
    );
    assert_eq!(budget_spent(&redis, "acme"), 20, "a refusal holds nothing");
    b.bind(ask(&provider, "globex")).await.unwrap();
    assert_eq!(budget_spent(&redis, "globex"), 10);
    let stats = a.stats();
    assert_eq!(stats.family("tenant-model").unwrap().refused, 1);
    let key = "ratelimited:{openai:tenant-model}:budget:acme";
    let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
    assert!(
        ttl > 29 * 24 * 3_600_000,
        "a budget over the run is kept 30 days: {ttl} ms"
    );
}

/// A call's settle gives back to the fleet's budget what it held and did not use: 25 held,
/// 13 used, so another process's call of 10 fits the 25 where the hold alone would not.
#[tokio::test]
async fn a_settle_gives_back_to_the_fleets_tenant_budget() {
    let redis = RedisServer::start();
    let (a, b) = (
        budget_registry(&redis, "total"),
        budget_registry(&redis, "total"),
    );
    let provider = MockProvider::new(MockLimits::new(100_000, 10_000_000)).completion_with(|_| 3);
    let answer = a.bind(ask_long(&provider, "acme")).await.unwrap();
    let used = answer.prompt_tokens + answer.completion_tokens;
    assert_eq!(used, 13);
    eventually("the settle in the fleet's budget", || {
        budget_spent(&redis, "acme") == used
    })
    .await;
    b.bind(ask(&provider, "acme")).await.unwrap();
    assert_eq!(budget_spent(&redis, "acme"), used + 10);
}

/// Per day, the fleet's budget lives 24 hours from the tenant's first call.
#[tokio::test]
async fn a_daily_tenant_budget_of_the_fleet_expires_a_day_after_its_first_call() {
    let redis = RedisServer::start();
    let a = budget_registry(&redis, "day");
    let provider = MockProvider::new(MockLimits::new(100_000, 10_000_000));
    a.bind(ask(&provider, "acme")).await.unwrap();
    let key = "ratelimited:{openai:tenant-model}:budget:acme";
    let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
    assert!((23 * 3_600_000..=24 * 3_600_000).contains(&ttl), "{ttl} ms");
    a.bind(ask(&provider, "acme")).await.unwrap();
    let again: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
    assert!(
        again <= ttl,
        "a later call does not extend the day: {again} > {ttl}"
    );
    assert!(a.bind(ask(&provider, "acme")).await.is_err());
}

/// The same in dollars: at $1 per million input tokens a call of 10 costs $0.00001, and a
/// tenant budget of $0.000025 admits one call on each process, then refuses with $0.000005 left.
#[tokio::test]
async fn a_tenant_dollar_budget_is_the_fleets_too() {
    let redis = RedisServer::start();
    let registry = || {
        let config = RedisConfig::new(redis.url()).timeout(Duration::from_secs(2));
        config.registry_with_env([
            ("RATE_LIMITED_TENANT_MODEL_RPM", "600"),
            ("RATE_LIMITED_TENANT_MODEL_TPM", "60000"),
            ("RATE_LIMITED_TENANT_MODEL_PRICE", "input=1,output=4"),
            ("RATE_LIMITED_TENANT_MODEL_TENANT_BUDGET_USD", "0.000025"),
            ("RATE_LIMITED_HEADROOM", "1"),
        ])
    };
    let (a, b) = (registry(), registry());
    let provider = MockProvider::new(MockLimits::new(100_000, 10_000_000));
    a.bind(ask(&provider, "acme")).await.unwrap();
    b.bind(ask(&provider, "acme")).await.unwrap();
    let error = b.bind(ask(&provider, "acme")).await.unwrap_err();
    let ApiError::Limiter(Error::BudgetExhausted {
        budget, remaining, ..
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(budget, "the openai/tenant-model tenant `acme` USD budget");
    assert_eq!(remaining.to_string(), "$0.000005");
    assert_eq!(provider.stats().admitted, 2);
}

/// A capped tenant's backlog sits out of the process's turns while its cap refills: 200
/// requests of one tenant capped at 600 RPM (10 a second), its minute spent by another process,
/// drain one admission per script call, not one call per 64 queued requests each time the cap
/// has room; another tenant's request behind them goes at once.
#[tokio::test]
async fn a_capped_tenants_backlog_costs_one_script_call_per_admission() {
    let redis = RedisServer::start();
    let vars = [
        ("RATE_LIMITED_TENANT_MODEL_RPM", "60000"),
        ("RATE_LIMITED_TENANT_MODEL_TPM", "1000000"),
        ("RATE_LIMITED_TENANT_MODEL_TENANT_RPM", "600"),
    ];
    let (a, b) = (limiter(&redis, &vars), limiter(&redis, &vars));
    let acme = Tenant::from("acme");
    let minute = Cost {
        requests: 600,
        ..Cost::default()
    };
    a.acquire_for(minute, Priority::Normal, &acme)
        .await
        .unwrap()
        .keep();

    let admitted = Arc::new(Mutex::new(0_u32));
    let backlog: Vec<_> = (0..200)
        .map(|_| {
            let (b, acme, admitted) = (b.clone(), acme.clone(), Arc::clone(&admitted));
            tokio::spawn(async move {
                let reservation = b
                    .acquire_for(Cost::request(1, 0), Priority::Normal, &acme)
                    .await
                    .unwrap();
                *admitted.lock().unwrap() += 1;
                reservation.keep();
            })
        })
        .collect();
    eventually("acme's first admission", || *admitted.lock().unwrap() >= 1).await;
    admitted_now(&b, 10, "globex").await.keep();
    let (calls_before, admitted_before) = (redis.calls("evalsha"), *admitted.lock().unwrap());
    eventually("ten more of acme's", || {
        *admitted.lock().unwrap() >= admitted_before + 10
    })
    .await;
    let calls = redis.calls("evalsha") - calls_before;
    let more = *admitted.lock().unwrap() - admitted_before;
    println!("{more} admissions of the capped tenant took {calls} script calls");
    assert!(
        u64::from(more) * 2 + 2 >= calls,
        "{calls} calls for {more} admissions"
    );
    for task in backlog {
        task.abort();
    }
}
