//! A deployment pool whose deployments are shared through a real `redis-server` (issue 20):
//! the pool routes on the state the fleet shares, asked from Redis, not on what this process
//! alone has charged. Each registry stands for one process.

use std::time::Duration;

use ratelimited::limiter::{Cost, Forecast};
use ratelimited::pool::Pool;
use ratelimited::redis::RedisConfig;

mod redis_support;
use redis_support::RedisServer;

/// One process's pool `gpt-4o` of `east` then `west`, 6,000 TPM each, on `redis`.
fn pool(redis: &RedisServer) -> Pool {
    pool_with(redis, &[])
}

/// The same with `extra` variables.
fn pool_with(redis: &RedisServer, extra: &[(&str, &str)]) -> Pool {
    let mut vars = vec![
        ("RATE_LIMITED_HEADROOM", "1"),
        ("RATE_LIMITED_POOL_GPT_4O", "east,west"),
        ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_EAST_TPM", "6000"),
        ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_WEST_TPM", "6000"),
    ];
    vars.extend_from_slice(extra);
    RedisConfig::new(redis.url())
        .timeout(Duration::from_secs(2))
        .registry_with_env(vars)
        .pool("gpt-4o")
        .unwrap()
}

/// Another process spent east's whole minute: this one's call goes to west at once, where the
/// pool's order alone (both unknown here) would queue it on east for 10 s.
#[tokio::test]
async fn a_pool_routes_on_the_state_the_fleet_shares() {
    let redis = RedisServer::start();
    let (a, b) = (pool(&redis), pool(&redis));
    let first = a.acquire(Cost::request(6_000, 0)).await.unwrap();
    assert_eq!(first.deployment().name(), "east");
    first.keep();

    // What B's own state says of east (nothing charged here), and what the fleet's says.
    let east = b.deployment("east").unwrap().limiter();
    let cost = Cost::request(1_000, 0);
    assert!(matches!(east.forecast(&cost), Forecast::Unknown { .. }));
    let now = tokio::time::Instant::now();
    let shared = east.forecast_shared(&cost).await;
    let wait = shared.wait_from(now).unwrap();
    println!("east, shared: admitted in {wait:?}");
    assert!(
        wait > Duration::from_millis(9_000) && wait <= Duration::from_millis(10_100),
        "{shared:?}"
    );

    let second = tokio::time::timeout(Duration::from_secs(5), b.acquire(cost))
        .await
        .expect("queued behind the other process's spend on east")
        .unwrap();
    assert_eq!(second.deployment().name(), "west");
    second.keep();
}

/// A cost no deployment's shared bucket can hold is refused by the pool at once, naming each.
#[tokio::test]
async fn a_cost_too_large_for_every_shared_deployment_is_refused_naming_each() {
    let redis = RedisServer::start();
    let error = pool(&redis)
        .acquire(Cost::request(7_000, 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("east") && error.contains("west") && error.contains("7000"),
        "{error}"
    );
}

/// A tenant's cap on a deployment is the fleet's, and routing asks it there: after another
/// process spent tenant `acme`'s 1,000 TPM on east, this process's forecast of east for `acme`
/// is the cap's refill (a minute for 1,000 tokens), where east's own buckets and another
/// tenant's forecast say about a second; and the pool sends this process's call for `acme` to
/// west.
#[tokio::test]
async fn a_pool_routes_a_tenant_on_its_caps_in_the_fleet() {
    use ratelimited::{Priority, Tenant};
    let redis = RedisServer::start();
    let caps = [
        ("RATE_LIMITED_EAST_TENANT_TPM", "1000"),
        ("RATE_LIMITED_WEST_TENANT_TPM", "1000"),
    ];
    let capped = || pool_with(&redis, &caps);
    let (a, b) = (capped(), capped());
    let (acme, globex) = (Tenant::from("acme"), Tenant::from("globex"));
    let cost = Cost::request(1_000, 0);
    let first = a.acquire_for(cost, Priority::Normal, &acme).await.unwrap();
    assert_eq!(first.deployment().name(), "east");
    first.keep();

    let east = b.deployment("east").unwrap().limiter();
    let now = tokio::time::Instant::now();
    let for_acme = east.forecast_shared_for(&cost, &acme).await;
    let wait = for_acme.wait_from(now).unwrap();
    println!("east for acme, shared: admitted in {wait:?}");
    assert!(wait > Duration::from_millis(59_000), "{for_acme:?}");
    // Another tenant's forecast is the family's own (east's buckets, about a second here).
    let for_globex = east.forecast_shared_for(&cost, &globex).await;
    let family = east.forecast_shared(&cost).await;
    let (globex_wait, family_wait) = (for_globex.wait_from(now), family.wait_from(now));
    println!("east for globex: {globex_wait:?}; east's own: {family_wait:?}");
    assert!(family_wait.unwrap() < Duration::from_secs(2), "{family:?}");
    assert!(globex_wait.unwrap() < family_wait.unwrap() + Duration::from_millis(100));

    let second = tokio::time::timeout(
        Duration::from_secs(5),
        b.acquire_for(cost, Priority::Normal, &acme),
    )
    .await
    .expect("queued on east behind acme's spent cap")
    .unwrap();
    assert_eq!(second.deployment().name(), "west");
    assert_eq!(second.tenant(), Some(&acme));
    second.keep();
}
