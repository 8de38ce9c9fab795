//! The memory a limiter keeps per tenant, counted by the allocator: per waiting tenant, per
//! capped tenant whose cap is refilling, and what is left once 100,000 distinct tenants have
//! gone idle. Run with `--nocapture` to see the numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ratelimited::limiter::{Acquire, Cost};
use ratelimited::{Limiter, Priority, Quota, Tenant};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const TENANTS: u64 = 100_000;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn memory_per_tenant_and_after_a_hundred_thousand_go_idle() {
    let limiter = Limiter::new(Quota::default().rpm(60_000_000));
    // Ids made up front, so that only the limiter's own memory is counted.
    let tenants: Vec<Tenant> = (0..TENANTS).map(Tenant::from).collect();

    // Waiting: every tenant with one waiter queued behind a hold.
    limiter.hold_for(Duration::from_secs(1));
    let mut waiting: Vec<Pin<Box<Acquire>>> = tenants
        .iter()
        .map(|t| Box::pin(limiter.acquire_for(Cost::request(1, 1), Priority::Normal, t)))
        .collect();
    let before = live();
    let mut cx = Context::from_waker(Waker::noop());
    for future in &mut waiting {
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Pending));
    }
    let per_waiting = (live() - before) / TENANTS as isize;
    assert_eq!(limiter.tenants_tracked(), TENANTS as usize);
    drop(waiting);
    assert_eq!(limiter.tenants_tracked(), 0);

    // Capped: every tenant has made a call its cap is still refilling from.
    limiter
        .set_default_tenant_cap(Some(Quota::default().rpm(10).tpm(10_000)))
        .unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    let before = live();
    for tenant in &tenants {
        limiter
            .acquire_for(Cost::request(1, 1), Priority::Normal, tenant)
            .await
            .unwrap()
            .keep();
    }
    let per_capped = (live() - before) / TENANTS as isize;
    assert_eq!(limiter.tenants_tracked(), TENANTS as usize);

    // A minute on, every cap is full: the next tenants' calls drop the idle ones.
    tokio::time::advance(Duration::from_secs(61)).await;
    for tenant in tenants.iter().take(50_000) {
        limiter
            .acquire_for(Cost::request(1, 1), Priority::Normal, tenant)
            .await
            .unwrap()
            .keep();
    }
    let kept = limiter.tenants_tracked();
    let left = live() - before;

    println!(
        "memory per tenant: {per_waiting} bytes with one waiter queued, {per_capped} bytes \
         capped and refilling; after 100,000 tenants: {kept} kept, {} KiB above the start",
        left / 1024
    );
    assert!(
        per_waiting < 1_024,
        "{per_waiting} bytes per waiting tenant"
    );
    assert!(per_capped < 2_048, "{per_capped} bytes per capped tenant");
    assert_eq!(kept, 50_000, "only the tenants of the last minute are kept");
    assert!(left < per_capped * 60_000 + (8 << 20), "{left} bytes left");
}
