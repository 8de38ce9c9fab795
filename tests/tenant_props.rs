//! Property test of tenants against a small reference token bucket, in paused time: with
//! random tenants (some capped, some weighted), lanes, sizes, arrival times and
//! cancellations, (a) every admission fits the family's reference buckets (RPM and TPM) at
//! the moment it happens, (b) every admission of a capped tenant fits its cap's reference
//! bucket too, (c) each tenant's waiters in one lane are admitted in arrival order, and
//! (d) every waiter that was not cancelled is admitted in the end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use ratelimited::{limiter::Cost, Limiter, Priority, Quota, Tenant};
use tokio::time::Instant;

const WINDOW_NS: i128 = 60_000_000_000;

/// A token bucket of `capacity` per minute: level in units × window ns.
#[derive(Clone, Debug)]
struct RefBucket {
    capacity: i128,
    level: i128,
    at_ns: i128,
}

impl RefBucket {
    fn new(capacity: u64) -> Self {
        RefBucket {
            capacity: capacity.into(),
            level: 0,
            at_ns: 0,
        }
    }

    /// Charges `units` at `now_ns`; false if they did not fit.
    fn charge(&mut self, units: u64, now_ns: i128) -> bool {
        self.level = (self.level - self.capacity * (now_ns - self.at_ns)).max(0);
        self.at_ns = now_ns;
        self.level += i128::from(units) * WINDOW_NS;
        self.level <= self.capacity * WINDOW_NS
    }
}

#[derive(Clone, Debug)]
struct Call {
    tenant: usize,
    lane: usize,
    tokens: u64,
    arrival_ms: u64,
    /// Given up after this long, if not admitted by then.
    patience_ms: Option<u64>,
}

#[derive(Clone, Debug)]
struct Admitted {
    call: usize,
    at_ns: i128,
}

fn calls() -> impl Strategy<Value = Vec<Call>> {
    prop::collection::vec(
        (
            0..5_usize,
            0..3_usize,
            1..1_500_u64,
            0..30_000_u64,
            prop::option::weighted(0.15, 1..20_000_u64),
        )
            .prop_map(|(tenant, lane, tokens, arrival_ms, patience_ms)| Call {
                tenant,
                lane,
                tokens,
                arrival_ms,
                patience_ms,
            }),
        1..60,
    )
}

fn run_paused<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

const FAMILY_TPM: u64 = 6_000;
const FAMILY_RPM: u64 = 30;
/// Tenants 0 and 1 are capped: 2,000 and 3,000 tokens a minute. Tenant 2 has weight 3.
const CAPS: [Option<u64>; 5] = [Some(2_000), Some(3_000), None, None, None];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn neither_the_family_nor_a_capped_tenant_is_ever_over_its_limit(mut calls in calls()) {
        calls.sort_by_key(|c| c.arrival_ms);
        let calls = Arc::new(calls);
        let (admitted, cancelled) = run_paused(run(calls.clone()));

        // (a), (b): every admission fits the reference buckets, in time order.
        let mut tpm = RefBucket::new(FAMILY_TPM);
        let mut rpm = RefBucket::new(FAMILY_RPM);
        let mut caps: HashMap<usize, RefBucket> = CAPS
            .iter()
            .enumerate()
            .filter_map(|(t, cap)| cap.map(|c| (t, RefBucket::new(c))))
            .collect();
        let mut by_time = admitted.clone();
        by_time.sort_by_key(|a| a.at_ns);
        for a in &by_time {
            let call = &calls[a.call];
            prop_assert!(tpm.charge(call.tokens, a.at_ns), "family TPM over at {a:?}");
            prop_assert!(rpm.charge(1, a.at_ns), "family RPM over at {a:?}");
            if let Some(cap) = caps.get_mut(&call.tenant) {
                let tenant = call.tenant;
                prop_assert!(cap.charge(call.tokens, a.at_ns), "tenant {tenant} over: {a:?}");
            }
        }
        // (c): FIFO within a tenant and lane.
        let mut last: HashMap<(usize, usize), usize> = HashMap::new();
        for a in &admitted {
            let call = &calls[a.call];
            if let Some(previous) = last.insert((call.tenant, call.lane), a.call) {
                let (tenant, lane, index) = (call.tenant, call.lane, a.call);
                prop_assert!(previous < index, "{tenant}, lane {lane}: {previous} after {index}");
            }
        }
        // (d): everyone not cancelled got in.
        prop_assert_eq!(admitted.len() + cancelled, calls.len());
    }
}

async fn run(calls: Arc<Vec<Call>>) -> (Vec<Admitted>, usize) {
    let limiter = Limiter::new(Quota::default().tpm(FAMILY_TPM).rpm(FAMILY_RPM));
    for (tenant, cap) in CAPS.iter().enumerate() {
        if let Some(tpm) = cap {
            let cap = Some(Quota::default().tpm(*tpm));
            limiter.set_tenant_cap(&Tenant::from(tenant), cap).unwrap();
        }
    }
    limiter
        .set_tenant_weight(&Tenant::from(2_usize), 3)
        .unwrap();
    let start = Instant::now();
    let admitted: Arc<Mutex<Vec<Admitted>>> = Arc::default();
    let mut handles = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(call.arrival_ms)).await;
        let (limiter, admitted, call) = (limiter.clone(), admitted.clone(), call.clone());
        handles.push(tokio::spawn(async move {
            let acquire = limiter.acquire_for(
                Cost::request(call.tokens, 0),
                Priority::ALL[call.lane],
                &Tenant::from(call.tenant),
            );
            let reservation = match call.patience_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), acquire).await {
                    Ok(r) => r.unwrap(),
                    Err(_) => return false,
                },
                None => acquire.await.unwrap(),
            };
            let at_ns = i128::try_from(start.elapsed().as_nanos()).unwrap();
            admitted
                .lock()
                .unwrap()
                .push(Admitted { call: index, at_ns });
            reservation.keep();
            true
        }));
        tokio::task::yield_now().await;
    }
    let mut cancelled = 0;
    for handle in handles {
        if !handle.await.unwrap() {
            cancelled += 1;
        }
    }
    let admitted = admitted.lock().unwrap().clone();
    (admitted, cancelled)
}
