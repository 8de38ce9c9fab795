//! The Redis backend against a real Redis Cluster of three masters on loopback: a family's
//! keys live on the node that serves its hash tag's slot, limits hold exactly as on one
//! server, and the slot moved to another master mid-run keeps its bucket. Real time: the
//! servers' clocks decide.

use std::time::{Duration, Instant, SystemTime};

use ratelimited::limiter::Cost;
use ratelimited::redis::{RedisConfig, REDIS_CLUSTER_VAR};
use ratelimited::{Limiter, Registry, Usage};

mod redis_support;
use redis_support::{eventually, RedisCluster, RedisServer};

/// 6,000 tokens per minute at headroom 1: 100 tokens per second.
const LIMITS: [(&str, &str); 2] = [
    ("RATE_LIMITED_CLUSTER_MODEL_TPM", "6000"),
    ("RATE_LIMITED_HEADROOM", "1"),
];
const TPM: &str = "ratelimited:{openai:cluster-model:tier-1}:tpm";

/// Shares limits through the cluster that `url` names one or more nodes of.
fn cluster_config(url: String) -> RedisConfig {
    RedisConfig::new(url)
        .cluster(true)
        // Far above a call's time on a loaded machine: most tests are not about timeouts.
        .timeout(Duration::from_secs(2))
}

fn limiter(config: RedisConfig) -> Limiter {
    config
        .registry_with_env(LIMITS)
        .limiter_with("cluster-model", Some("openai"), None)
        .unwrap()
        .limiter
}

/// When a reservation starts on the servers' clock: taken through Redis, not the fallback.
fn start(reservation: &ratelimited::limiter::Reservation) -> SystemTime {
    reservation
        .shared_start()
        .expect("admitted by the local fallback, not by Redis")
}

fn units_on(node: &RedisServer) -> f64 {
    node.units_in_use(TPM, 6_000, Duration::from_secs(60))
}

#[tokio::test]
async fn a_family_is_charged_on_the_node_of_its_slot_exactly_as_on_one_server() {
    let cluster = RedisCluster::start();
    // One process knows a single node, the other all three: both find the slot's owner.
    let a = limiter(cluster_config(cluster.url()));
    let b = limiter(cluster_config(cluster.seeds()));

    // The whole minute's 6,000 tokens in ten reservations: all admitted at once.
    let begun = Instant::now();
    let mut starts = Vec::new();
    for _ in 0..10 {
        let reservation = a.acquire(Cost::request(600, 0)).await.unwrap();
        starts.push(start(&reservation));
        reservation.keep();
    }
    assert!(
        begun.elapsed() < Duration::from_millis(500),
        "{:?}",
        begun.elapsed()
    );
    // B never charged anything itself, yet waits for 100 tokens to refill: 1 s after the
    // first reservation's start on the server's clock, to the microsecond.
    let begun = Instant::now();
    let next = b.acquire(Cost::request(100, 0)).await.unwrap();
    let waited = begun.elapsed();
    assert_eq!(
        start(&next).duration_since(starts[0]).unwrap(),
        Duration::from_secs(1)
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2_000),
        "{waited:?}"
    );
    next.keep();
    assert!(!a.shared_store_down() && !b.shared_store_down());

    // The keys are on the node that serves the tag's slot, and only there.
    let owner = cluster.owner(cluster.slot(TPM));
    assert!(units_on(owner) > 5_000.0, "{}", units_on(owner));
    for node in &cluster.nodes {
        let keys = node.dbsize();
        if node.url() == owner.url() {
            assert!(keys >= 1);
        } else {
            assert_eq!(
                keys,
                0,
                "keys on {}, which does not serve the slot",
                node.url()
            );
        }
    }
}

#[tokio::test]
async fn the_slot_moved_to_another_master_mid_run_keeps_its_bucket() {
    let cluster = RedisCluster::start();
    let a = limiter(cluster_config(cluster.seeds()));
    let slot = cluster.slot(TPM);
    let from = cluster.owner(slot);
    let to = cluster
        .nodes
        .iter()
        .find(|node| node.url() != from.url())
        .unwrap();

    // 1,000 tokens settled to 500 (a settle, which must not run twice, has a connection of
    // its own: this one learns the slot's owner now) ...
    let warm = a.acquire(Cost::request(1_000, 0)).await.unwrap();
    let first = start(&warm);
    warm.settle(Usage::new(500, 0));
    eventually("the first settle to reach Redis", || units_on(from) < 600.0).await;
    // ... 5,000 reserved (settled later), then the rest of the minute's 6,000.
    let pending = a.acquire(Cost::request(5_000, 0)).await.unwrap();
    a.acquire(Cost::request(500, 0)).await.unwrap().keep();

    cluster.move_slot(slot, to);
    assert_eq!(from.dbsize(), 0);
    assert!(units_on(to) > 5_900.0, "{}", units_on(to));
    let errors = from.error_replies();
    // The client still sends to the old owner: its MOVED answer sends the call to the new
    // one, which runs the script for the first time (NOSCRIPT, then loaded there). The
    // bucket did not reset: 100 more tokens wait 1 s past the first start.
    let next = a.acquire(Cost::request(100, 0)).await.unwrap();
    assert_eq!(
        start(&next).duration_since(first).unwrap(),
        Duration::from_secs(1)
    );
    next.keep();
    assert!(!a.shared_store_down());
    assert!(
        to.calls("eval") >= 1,
        "the new owner never loaded the script"
    );

    // The settle's connection was told MOVED too, and followed the move on its own (the
    // client does not retry it): 4,900 tokens come back ...
    let before = units_on(to);
    pending.settle(Usage::new(100, 0));
    eventually("the settle to reach the slot's new owner", || {
        units_on(to) < before - 4_000.0
    })
    .await;
    assert!(
        from.error_replies() >= errors + 2,
        "the old owner answered {} errors, not a MOVED to each connection",
        from.error_replies() - errors
    );
    // ... and a request of 4,000 goes at once.
    let begun = Instant::now();
    let now = a.acquire(Cost::request(4_000, 0)).await.unwrap();
    assert!(
        start(&now) <= SystemTime::now() + Duration::from_millis(500),
        "scheduled {:?} ahead",
        start(&now).duration_since(SystemTime::now())
    );
    assert!(
        begun.elapsed() < Duration::from_millis(500),
        "{:?}",
        begun.elapsed()
    );
    now.keep();
    assert!(!a.shared_store_down());
    assert_eq!(
        from.dbsize(),
        0,
        "keys written on the node that gave the slot away"
    );
}

#[tokio::test]
async fn the_slots_master_down_is_bounded_by_the_timeout_and_its_return_is_found() {
    let mut cluster = RedisCluster::start();
    let a = limiter(cluster_config(cluster.seeds()).timeout(Duration::from_millis(300)));
    let slot = cluster.slot(TPM);
    let owner = cluster
        .nodes
        .iter()
        .position(|node| node.serves(slot))
        .unwrap();
    let reservation = a.acquire(Cost::request(100, 0)).await.unwrap();
    start(&reservation);
    reservation.keep();

    // No replica takes over: the call fails within its timeout and the fallback admits.
    cluster.nodes[owner].kill();
    let begun = Instant::now();
    let reservation = a.acquire(Cost::request(100, 0)).await.unwrap();
    assert_eq!(reservation.shared_start(), None, "admitted by Redis");
    assert!(a.shared_store_down());
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
    reservation.keep();

    // Back with its slots (empty: no persistence), the node is found again by the client.
    cluster.nodes[owner].restart();
    cluster.wait_until_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reservation = a.acquire(Cost::request(1, 0)).await.unwrap();
        let shared = reservation.shared_start().is_some();
        reservation.keep();
        if shared {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still on the fallback 10 s after the node came back"
        );
        // The breaker lets one call through per probe interval (250 ms).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.shared_store_down());
    let reservation = a.acquire(Cost::request(3_000, 0)).await.unwrap();
    start(&reservation);
    reservation.keep();
    let units = units_on(&cluster.nodes[owner]);
    assert!(units > 2_900.0, "{units}");
}

#[tokio::test]
async fn script_flush_on_the_owner_mid_run_changes_nothing() {
    let cluster = RedisCluster::start();
    let a = limiter(cluster_config(cluster.url()));
    let owner = cluster.owner(cluster.slot(TPM));
    for i in 0..20 {
        if i == 10 {
            assert_eq!(owner.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
        }
        let reservation = a.acquire(Cost::request(100, 0)).await.unwrap();
        start(&reservation);
        reservation.keep();
    }
    assert!(!a.shared_store_down());
    assert!(units_on(owner) > 1_900.0, "{}", units_on(owner));
}

#[tokio::test]
async fn the_env_vars_name_the_cluster_and_its_seed_nodes() {
    let cluster = RedisCluster::start();
    // A seed that does not answer is skipped: the client needs one that does.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let seeds = format!("{dead_url},{}", cluster.seeds());
    let mut vars: Vec<(&str, String)> = LIMITS.iter().map(|(k, v)| (*k, v.to_string())).collect();
    vars.push(("RATE_LIMITED_REDIS_URL", seeds));
    vars.push((REDIS_CLUSTER_VAR, "true".to_owned()));
    vars.push(("RATE_LIMITED_REDIS_TIMEOUT_MS", "2000".to_owned()));
    let registry = Registry::with_env(vars.clone());
    let a = registry
        .limiter_with("cluster-model", Some("openai"), None)
        .unwrap()
        .limiter;
    let reservation = a.acquire(Cost::request(3_000, 0)).await.unwrap();
    start(&reservation);
    reservation.keep();
    assert!(!a.shared_store_down());
    let owner = cluster.owner(cluster.slot(TPM));
    assert!(units_on(owner) > 2_900.0, "{}", units_on(owner));

    // Without the cluster variable, a list of URLs is refused, naming the fix.
    vars.retain(|(k, _)| *k != REDIS_CLUSTER_VAR);
    let err = Registry::with_env(vars)
        .limiter_with("cluster-model", Some("openai"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RATE_LIMITED_REDIS_URL") && err.contains("RATE_LIMITED_REDIS_CLUSTER=true"),
        "{err}"
    );
    // Cluster nodes have a host and port.
    let err = cluster_config("redis+unix:///tmp/ratelimited-none.sock".to_owned())
        .registry_with_env(LIMITS)
        .limiter_with("cluster-model", Some("openai"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RATE_LIMITED_REDIS_URL") && err.contains("not a unix socket"),
        "{err}"
    );
}
