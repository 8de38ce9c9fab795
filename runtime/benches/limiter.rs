//! The limiter's own cost, next to a peer in the same run.
//!
//! - `uncontended`: reserve + settle on a limiter that never binds, against governor's
//!   `check_n` (a lock-free GCRA that can neither refund nor queue). Target: within 3x.
//! - `handoff`: cost per admission when 1,000 tasks wait for one in-flight slot, against
//!   tokio's FIFO `Semaphore` doing the same handoff.
//! - tenants: the uncontended acquire + settle for a tenant (without a cap, and under a cap
//!   that never binds) against the same call without one (target: under 1.5x), and the
//!   handoff with the 1,000 waiters spread over 100 tenants against all of one tenant.
//!
//! Run with `cargo bench -p ratelimited-runtime --bench limiter`; the last lines print the ratios.

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use ratelimited_runtime::{Cost, Limiter, Priority, Quota, Tenant, Usage};

/// Mean nanoseconds per iteration of each benchmark, as measured by criterion's own samples.
static MEANS: Mutex<BTreeMap<&'static str, (u128, u64)>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, elapsed: Duration, iters: u64) -> Duration {
    let mut means = MEANS.lock().unwrap();
    let entry = means.entry(name).or_default();
    entry.0 += elapsed.as_nanos();
    entry.1 += iters;
    elapsed
}

fn mean_ns(name: &str) -> f64 {
    let means = MEANS.lock().unwrap();
    let (ns, iters) = means[name];
    ns as f64 / iters as f64
}

fn never_binding() -> Limiter {
    Limiter::new(
        Quota::default()
            .rpm(1_000_000_000_000)
            .tpm(1_000_000_000_000_000),
    )
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    let cost = Cost::request(1_000, 256);
    let usage = Usage::new(990, 120);

    let governor = governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::new(u32::MAX).unwrap(),
    ));
    let one = NonZeroU32::new(1).unwrap();
    group.bench_function("governor_check_n", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let _ = black_box(governor.check_n(black_box(one)));
            }
            record("governor_check_n", start.elapsed(), iters)
        })
    });

    let limiter = never_binding();
    group.bench_function("try_acquire_settle", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let reservation = limiter.try_acquire(black_box(cost)).unwrap();
                reservation.settle(black_box(usage));
            }
            record("try_acquire_settle", start.elapsed(), iters)
        })
    });

    let limiter = never_binding();
    let mut cx = Context::from_waker(Waker::noop());
    group.bench_function("acquire_poll_settle", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut acquire = pin!(limiter.acquire(black_box(cost)));
                let Poll::Ready(Ok(reservation)) = acquire.as_mut().poll(&mut cx) else {
                    panic!("a never-binding limiter admits at once");
                };
                reservation.settle(black_box(usage));
            }
            record("acquire_poll_settle", start.elapsed(), iters)
        })
    });

    let limiter = never_binding();
    let tenant = Tenant::from("workspace-42");
    group.bench_function("acquire_for_poll_settle", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut acquire =
                    pin!(limiter.acquire_for(black_box(cost), Priority::Normal, &tenant));
                let Poll::Ready(Ok(reservation)) = acquire.as_mut().poll(&mut cx) else {
                    panic!("a never-binding limiter admits at once");
                };
                reservation.settle(black_box(usage));
            }
            record("acquire_for_poll_settle", start.elapsed(), iters)
        })
    });

    let limiter = never_binding();
    let cap = Quota::default()
        .rpm(1_000_000_000_000)
        .tpm(1_000_000_000_000_000);
    limiter.set_default_tenant_cap(Some(cap)).unwrap();
    group.bench_function("acquire_for_capped_poll_settle", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut acquire =
                    pin!(limiter.acquire_for(black_box(cost), Priority::Normal, &tenant));
                let Poll::Ready(Ok(reservation)) = acquire.as_mut().poll(&mut cx) else {
                    panic!("a never-binding limiter admits at once");
                };
                reservation.settle(black_box(usage));
            }
            record("acquire_for_capped_poll_settle", start.elapsed(), iters)
        })
    });
    group.finish();
}

const WAITERS: usize = 1_000;

fn handoff(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("handoff_1000_waiters");
    group.sample_size(20);

    group.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let semaphore = Arc::new(tokio::sync::Semaphore::new(1));
                    let held = semaphore.clone().acquire_owned().await.unwrap();
                    let queued = Arc::new(AtomicUsize::new(0));
                    let tasks: Vec<_> = (0..WAITERS)
                        .map(|_| {
                            let (semaphore, queued) = (semaphore.clone(), queued.clone());
                            tokio::spawn(async move {
                                queued.fetch_add(1, Ordering::Relaxed);
                                drop(black_box(semaphore.acquire().await.unwrap()));
                            })
                        })
                        .collect();
                    while queued.load(Ordering::Relaxed) < WAITERS {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    drop(held);
                    for task in tasks {
                        task.await.unwrap();
                    }
                    total += start.elapsed();
                }
                record("tokio_semaphore", total, iters * WAITERS as u64)
            })
        })
    });

    group.bench_function("limiter", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let limiter = Limiter::new(Quota::default().concurrency(1));
                    let held = limiter.acquire(Cost::request(1, 0)).await.unwrap();
                    let tasks: Vec<_> = (0..WAITERS)
                        .map(|_| {
                            let limiter = limiter.clone();
                            tokio::spawn(async move {
                                let reservation =
                                    limiter.acquire(Cost::request(100, 10)).await.unwrap();
                                reservation.settle(black_box(Usage::new(100, 5)));
                            })
                        })
                        .collect();
                    while limiter.waiting() < WAITERS {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    drop(held);
                    for task in tasks {
                        task.await.unwrap();
                    }
                    total += start.elapsed();
                }
                record("limiter_handoff", total, iters * WAITERS as u64)
            })
        })
    });
    for (name, tenants) in [("one_tenant", 1), ("hundred_tenants", 100)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let limiter = Limiter::new(Quota::default().concurrency(1));
                        let held = limiter.acquire(Cost::request(1, 0)).await.unwrap();
                        let tasks: Vec<_> = (0..WAITERS)
                            .map(|waiter| {
                                let limiter = limiter.clone();
                                let tenant = Tenant::from(waiter % tenants);
                                tokio::spawn(async move {
                                    let reservation = limiter
                                        .acquire_for(
                                            Cost::request(100, 10),
                                            Priority::Normal,
                                            &tenant,
                                        )
                                        .await
                                        .unwrap();
                                    reservation.settle(black_box(Usage::new(100, 5)));
                                })
                            })
                            .collect();
                        while limiter.waiting() < WAITERS {
                            tokio::task::yield_now().await;
                        }
                        let start = Instant::now();
                        drop(held);
                        for task in tasks {
                            task.await.unwrap();
                        }
                        total += start.elapsed();
                    }
                    record(name, total, iters * WAITERS as u64)
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, uncontended, handoff);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let governor = mean_ns("governor_check_n");
    let ours = mean_ns("try_acquire_settle");
    let ours_async = mean_ns("acquire_poll_settle");
    let semaphore = mean_ns("tokio_semaphore");
    let handoff = mean_ns("limiter_handoff");
    println!();
    println!("summary (mean ns per operation over all criterion samples)");
    println!("  governor check_n                      {governor:>9.1} ns");
    println!(
        "  try_acquire + settle                  {ours:>9.1} ns  = {:.2}x governor (target <= 3x)",
        ours / governor
    );
    println!(
        "  acquire (polled) + settle             {ours_async:>9.1} ns  = {:.2}x governor",
        ours_async / governor
    );
    println!("  tokio Semaphore handoff, 1000 waiting {semaphore:>9.1} ns per admission");
    println!(
        "  limiter handoff, 1000 waiting         {handoff:>9.1} ns per admission = {:.2}x the semaphore",
        handoff / semaphore
    );
    let with_tenant = mean_ns("acquire_for_poll_settle");
    let capped = mean_ns("acquire_for_capped_poll_settle");
    let one = mean_ns("one_tenant");
    let hundred = mean_ns("hundred_tenants");
    println!(
        "  acquire_for (polled) + settle         {with_tenant:>9.1} ns  = {:.2}x without a tenant (target < 1.5x)",
        with_tenant / ours_async
    );
    println!(
        "  the same under a tenant cap           {capped:>9.1} ns  = {:.2}x without a tenant",
        capped / ours_async
    );
    println!("  handoff, 1000 waiting, one tenant     {one:>9.1} ns per admission");
    println!(
        "  handoff, 1000 waiting, 100 tenants    {hundred:>9.1} ns per admission = {:.2}x one tenant",
        hundred / one
    );
}
