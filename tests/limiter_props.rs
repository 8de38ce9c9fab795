//! Property tests of the limiter against a small reference token bucket, in paused time.
//!
//! The reference keeps each bucket's level as an exact rational (units × window nanoseconds)
//! and is fed the same admissions, settles and cancellations the limiter saw. For random
//! arrivals, sizes, settles and cancellations:
//! (a) every admission fits the reference bucket at the moment it happens (no window admits
//!     more than the bucket allows);
//! (b) admission follows arrival order, within each priority lane;
//! (c) every waiter that was not cancelled is admitted in the end, and none waits idle: when a
//!     waiter is admitted later than it arrived and later than the waiter before it, the
//!     reference had no room for it a timer tick (1 ms) earlier;
//! (d) refunds and debits land exactly.
//!
//! With priority lanes mixed, (a), (b) per lane and "everyone gets in" still hold; (c) is
//! checked only with one lane, since a waiter may rightly wait behind a later, higher one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use ratelimited::{
    limiter::{Cost, Dimension},
    Limiter, Priority, Quota, Usage,
};
use tokio::time::Instant;

const WINDOW_NS: i128 = 60_000_000_000;

/// One bucket of the reference model: level in units × window ns, refilled at `capacity`
/// units × window ns per window, i.e. `capacity` per nanosecond.
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
    fn advance(&mut self, now_ns: i128) {
        assert!(now_ns >= self.at_ns, "events replay in time order");
        self.level = (self.level - self.capacity * (now_ns - self.at_ns)).max(0);
        self.at_ns = now_ns;
    }
    fn fits(&self, units: u64) -> bool {
        self.level + i128::from(units) * WINDOW_NS <= self.capacity * WINDOW_NS
    }
    fn fits_at(&self, units: u64, now_ns: i128) -> bool {
        let mut probe = self.clone();
        probe.advance(now_ns);
        probe.fits(units)
    }
    fn add(&mut self, units: i128) {
        self.level = (self.level + units * WINDOW_NS).max(0);
    }
}

#[derive(Clone, Debug)]
struct Arrival {
    /// Milliseconds after the previous arrival (at least 1, so arrival order is unambiguous).
    gap_ms: u64,
    input: u64,
    output: u64,
    /// Give up waiting after this long, if set.
    cancel_after_ms: Option<u64>,
    /// How long the call runs before it settles.
    hold_ms: u64,
    /// What it really used, as a fraction of the output reserved (up to 1.5: debits).
    used_output_permille: u64,
    /// The lane it waits in.
    priority: Priority,
}

fn arrival(max_tokens: u64) -> impl Strategy<Value = Arrival> {
    (
        1..3_000u64,
        1..=max_tokens / 2,
        0..=max_tokens / 2,
        prop::option::weighted(0.3, 0..20_000u64),
        0..5_000u64,
        0..1_500u64,
    )
        .prop_map(
            |(gap_ms, input, output, cancel_after_ms, hold_ms, used_output_permille)| Arrival {
                gap_ms,
                input,
                output,
                cancel_after_ms,
                hold_ms,
                used_output_permille,
                priority: Priority::Normal,
            },
        )
}

/// Like [`arrival`], in a random lane.
fn arrival_in_any_lane(max_tokens: u64) -> impl Strategy<Value = Arrival> {
    (
        arrival(max_tokens),
        prop::sample::select(Priority::ALL.to_vec()),
    )
        .prop_map(|(a, priority)| Arrival { priority, ..a })
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Arrive { index: usize },
    Admit { index: usize, seq: usize },
    Settle { index: usize, used: Usage },
    Cancel { index: usize },
}

fn run_paused<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn limiter_matches_the_reference_bucket(
        rpm in 5..60u64,
        tpm in 2_000..20_000u64,
        arrivals in prop::collection::vec(arrival(2_000), 1..40),
    ) {
        let (events, cancelled) = run_paused(simulate(rpm, tpm, arrivals.clone()));
        check_against_reference(rpm, tpm, &arrivals, &events, &cancelled)?;
    }

    #[test]
    fn lanes_mixed_never_exceed_the_limit(
        rpm in 5..60u64,
        tpm in 2_000..20_000u64,
        share in prop::sample::select(vec![0.1, 0.25, 0.5]),
        arrivals in prop::collection::vec(arrival_in_any_lane(2_000), 1..40),
    ) {
        let (events, cancelled) = run_paused(simulate_with_share(rpm, tpm, share, arrivals.clone()));
        check_against_reference(rpm, tpm, &arrivals, &events, &cancelled)?;
    }

    #[test]
    fn refunds_and_debits_land_exactly(
        ops in prop::collection::vec((1..5_000u64, 0..5_000u64, 0..8_000u64, 0..4u8), 1..60),
    ) {
        run_paused(async {
            let limiter = Limiter::new(Quota::default().tpm(100_000_000).rpm(1_000_000).itpm(100_000_000).otpm(100_000_000));
            let (mut tokens, mut inputs, mut outputs, mut requests) = (0u64, 0u64, 0u64, 0u64);
            let mut open = Vec::new();
            for (input, output, used_output, action) in ops {
                let mut reservation = limiter.acquire(Cost::request(input, output)).await.unwrap();
                match action {
                    0 => {
                        reservation.settle(Usage::new(input, used_output));
                        tokens += input + used_output; inputs += input; outputs += used_output; requests += 1;
                    }
                    1 => drop(reservation), // never sent: full refund
                    2 => {
                        reservation.mark_sent();
                        drop(reservation); // usage unknown: keep the estimate
                        tokens += input + output; inputs += input; outputs += output; requests += 1;
                    }
                    _ => {
                        tokens += input + output; inputs += input; outputs += output; requests += 1;
                        open.push(reservation);
                    }
                }
                assert_eq!(limiter.in_use(Dimension::TokensPerMinute), Some(tokens));
                assert_eq!(limiter.in_use(Dimension::InputTokensPerMinute), Some(inputs));
                assert_eq!(limiter.in_use(Dimension::OutputTokensPerMinute), Some(outputs));
                assert_eq!(limiter.in_use(Dimension::RequestsPerMinute), Some(requests));
            }
        });
    }

    #[test]
    fn concurrency_cap_holds_and_every_waiter_gets_in(
        cap in 1..5u32,
        holds in prop::collection::vec((0..200u64, 1..3_000u64, prop::option::weighted(0.3, 0..2_000u64)), 1..60),
    ) {
        run_paused(async {
            let limiter = Limiter::new(Quota::default().concurrency(cap).rpm(600));
            let in_flight = Arc::new(Mutex::new((0u32, 0u32)));
            let mut tasks = Vec::new();
            for (gap, hold, cancel) in holds {
                tokio::time::sleep(Duration::from_millis(gap)).await;
                let (limiter, in_flight) = (limiter.clone(), in_flight.clone());
                tasks.push((cancel.is_none(), tokio::spawn(async move {
                    let acquire = limiter.acquire(Cost::request(1, 0));
                    let reservation = match cancel {
                        Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), acquire).await {
                            Ok(r) => r.unwrap(),
                            Err(_) => return false,
                        },
                        None => acquire.await.unwrap(),
                    };
                    {
                        let mut f = in_flight.lock().unwrap();
                        f.0 += 1;
                        f.1 = f.1.max(f.0);
                    }
                    tokio::time::sleep(Duration::from_millis(hold)).await;
                    in_flight.lock().unwrap().0 -= 1;
                    reservation.settle(Usage::new(1, 0));
                    true
                })));
            }
            let all = async {
                for (must_finish, task) in tasks {
                    let admitted = task.await.unwrap();
                    assert!(admitted || !must_finish, "a waiter that was never cancelled was not admitted");
                }
            };
            tokio::time::timeout(Duration::from_secs(86_400), all).await.expect("deadlock: waiters left behind");
            let (now, max) = *in_flight.lock().unwrap();
            assert_eq!(now, 0);
            assert!(max <= cap, "{max} in flight with a cap of {cap}");
            assert_eq!(limiter.in_use(Dimension::Concurrency), Some(0), "a slot leaked");
            assert_eq!(limiter.waiting(), 0);
        });
    }
}

async fn simulate(rpm: u64, tpm: u64, arrivals: Vec<Arrival>) -> (Vec<(i128, Event)>, Vec<bool>) {
    simulate_with_share(rpm, tpm, ratelimited::limiter::DEFAULT_LANE_SHARE, arrivals).await
}

async fn simulate_with_share(
    rpm: u64,
    tpm: u64,
    share: f64,
    arrivals: Vec<Arrival>,
) -> (Vec<(i128, Event)>, Vec<bool>) {
    let limiter = Limiter::new(Quota::default().rpm(rpm).tpm(tpm));
    limiter.set_lane_share(share).unwrap();
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seq = Arc::new(Mutex::new(0usize));
    let stamp = move || (Instant::now() - start).as_nanos() as i128;
    let mut tasks = Vec::new();
    for (index, a) in arrivals.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(a.gap_ms)).await;
        log.lock().unwrap().push((stamp(), Event::Arrive { index }));
        let (limiter, log, seq) = (limiter.clone(), log.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let acquire = limiter.acquire_with(Cost::request(a.input, a.output), a.priority);
            let reservation = match a.cancel_after_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), acquire).await {
                    Ok(r) => r.unwrap(),
                    Err(_) => {
                        log.lock().unwrap().push((stamp(), Event::Cancel { index }));
                        return true;
                    }
                },
                None => acquire.await.unwrap(),
            };
            {
                let mut s = seq.lock().unwrap();
                log.lock()
                    .unwrap()
                    .push((stamp(), Event::Admit { index, seq: *s }));
                *s += 1;
            }
            tokio::time::sleep(Duration::from_millis(a.hold_ms)).await;
            let used = Usage::new(a.input, a.output * a.used_output_permille / 1_000);
            log.lock()
                .unwrap()
                .push((stamp(), Event::Settle { index, used }));
            reservation.settle(used);
            false
        }));
    }
    let mut cancelled = Vec::new();
    let join = async {
        for t in tasks {
            cancelled.push(t.await.unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(86_400), join)
        .await
        .expect("deadlock: a waiter was never admitted");
    let events = log.lock().unwrap().clone();
    (events, cancelled)
}

fn check_against_reference(
    rpm: u64,
    tpm: u64,
    arrivals: &[Arrival],
    events: &[(i128, Event)],
    cancelled: &[bool],
) -> Result<(), TestCaseError> {
    let mut requests = RefBucket::new(rpm);
    let mut tokens = RefBucket::new(tpm);
    let mut arrived_at = vec![0i128; arrivals.len()];
    let mut left_at: Vec<Option<i128>> = vec![None; arrivals.len()];
    let mut admitted = vec![false; arrivals.len()];
    let mut sequence = Vec::new();
    let one_lane = arrivals.iter().all(|a| a.priority == arrivals[0].priority);
    for &(at, event) in events {
        match event {
            Event::Arrive { index } => arrived_at[index] = at,
            Event::Cancel { index } => left_at[index] = Some(at),
            Event::Admit { index, seq } => {
                let a = &arrivals[index];
                let cost = a.input + a.output;
                // (c) no idle waiting: from the moment it was head of the queue, and since the
                // last change of state, the reference had no room for it up to a tick before.
                let head_since = (0..index)
                    .filter_map(|j| left_at[j])
                    .fold(arrived_at[index], i128::max);
                let probe = head_since.max(tokens.at_ns).max(at - 1_000_002);
                if one_lane && probe < at {
                    let room = requests.fits_at(1, probe) && tokens.fits_at(cost, probe);
                    prop_assert!(
                        !room,
                        "request {index} had room at {probe} ns but waited until {at} ns"
                    );
                }
                requests.advance(at);
                tokens.advance(at);
                // (a) every admission fits the reference bucket.
                prop_assert!(
                    requests.fits(1),
                    "request {index} admitted at {at} ns over the RPM bucket"
                );
                prop_assert!(
                    tokens.fits(cost),
                    "request {index} admitted at {at} ns over the TPM bucket"
                );
                requests.add(1);
                tokens.add(cost.into());
                left_at[index] = Some(at);
                admitted[index] = true;
                sequence.push((seq, index));
            }
            Event::Settle { index, used } => {
                let a = &arrivals[index];
                requests.advance(at);
                tokens.advance(at);
                tokens.add(
                    i128::from(used.input_tokens + used.output_tokens)
                        - i128::from(a.input + a.output),
                );
            }
        }
    }
    // (b) FIFO within each lane: admission sequence is increasing in arrival index.
    sequence.sort();
    for lane in Priority::ALL {
        let order: Vec<usize> = sequence
            .iter()
            .map(|&(_, i)| i)
            .filter(|&i| arrivals[i].priority == lane)
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(&order, &sorted, "{} admissions out of arrival order", lane);
    }
    // (c) everyone not cancelled got in.
    for (index, was_cancelled) in cancelled.iter().enumerate() {
        prop_assert!(
            *was_cancelled || admitted[index],
            "request {index} never admitted"
        );
    }
    Ok(())
}
