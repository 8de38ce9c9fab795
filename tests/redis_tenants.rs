//! Tenants of a family shared by several processes through a real `redis-server` (issue 21):
//! a tenant's cap lives in Redis beside the family's buckets and is charged in the same script
//! call, so the fleet together keeps it; a tenant at its cap holds nobody else back; settles
//! give back to the cap; and each process's waiters go to Redis in tenant turns. Each limiter
//! stands for one process.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ratelimited::limiter::{Cost, Dimension};
use ratelimited::redis::RedisConfig;
use ratelimited::{Error, Limiter, Priority, Quota, Tenant, Usage};

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
