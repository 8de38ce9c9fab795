//! `ratelimited::stats::snapshot()` read under load from another task, in paused time: the counts add
//! up in every snapshot, and the totals match what the calls did.

use std::time::Duration;

use ratelimited::config::{LimitFamily, Provider};
use ratelimited::prices::built_in_price;
use ratelimited::testing::{fresh_registry_with_env, spawn_scoped};
use ratelimited::{
    rate_limited,
    stats::{BreakerState, FamilyStats},
    CallError, Usage,
};

/// Reserves 400 + 50 tokens; answers after 100 ms with 440 prompt and 30 completion tokens.
#[rate_limited(model = "gpt-4o-mini", tokens = 400, max_tokens = 50)]
async fn call() -> Result<Usage, CallError> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Usage::new(440, 30))
}

fn snapshot() -> FamilyStats {
    ratelimited::stats::snapshot()
        .family("gpt-4o-mini")
        .cloned()
        .expect("used")
}

#[tokio::test(start_paused = true)]
async fn the_counts_add_up_while_a_load_runs() {
    // 60 RPM: 60 calls go at once, then one a second; the last of 100 waits 40 s.
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "60"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "10000000"),
        ("RATE_LIMITED_HEADROOM", "1"),
    ]);
    let calls: Vec<_> = (0..100).map(|_| spawn_scoped(call())).collect();
    let watcher = spawn_scoped(async {
        let mut seen_waiting = 0;
        for _ in 0..45 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let s = snapshot();
            assert_eq!(
                s.admitted + s.refused + s.cancelled + s.waiting,
                s.issued,
                "{s:?}"
            );
            assert!(s.in_flight <= s.admitted);
            seen_waiting = seen_waiting.max(s.waiting);
        }
        seen_waiting
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(watcher.await.unwrap() >= 39, "the watcher saw the queue");

    let s = snapshot();
    assert_eq!(
        (s.issued, s.admitted, s.refused, s.cancelled),
        (100, 100, 0, 0)
    );
    assert_eq!((s.waiting, s.in_flight), (0, 0));
    assert_eq!(s.breaker, BreakerState::Closed);
    assert_eq!(s.retries.total() + s.rate_limited, 0);
    // Waits of 1 s .. 40 s for calls 61..100, each to within one timer tick.
    let tick = Duration::from_millis(1);
    assert!(s.max_wait >= Duration::from_secs(40) && s.max_wait <= Duration::from_secs(40) + tick);
    let total = Duration::from_secs((1..=40).sum());
    assert!(
        s.total_wait >= total && s.total_wait <= total + tick * 40,
        "{:?}",
        s.total_wait
    );
    // Tokens: reserved, charged (OpenAI keeps the unused output reserved: 440 + 50), reported.
    assert_eq!(s.reserved_tokens, 100 * 450);
    assert_eq!(s.charged_tokens, 100 * 490);
    assert_eq!(
        (
            s.reported_calls,
            s.reported_input_tokens,
            s.reported_output_tokens
        ),
        (100, 44_000, 3_000)
    );
    assert_eq!(s.estimate_ratio(), Some(40_000.0 / 44_000.0));
    let price = built_in_price(&LimitFamily::of(Provider::OpenAi, "gpt-4o-mini"))
        .unwrap()
        .price;
    let cost = s.cost_usd.unwrap();
    assert!(
        (cost - 100.0 * price.of_usage(Usage::new(440, 30))).abs() < 1e-12,
        "{cost}"
    );
}
