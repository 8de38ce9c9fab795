//! One limit family whose state lives in Redis: how a reservation is taken, settled and
//! held, and what happens while Redis is away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::limiter::acquire::SharedAcquire;
use crate::limiter::lanes::Priority;
use crate::limiter::{Limiter, Reservation, SharedHold, SharedStore};
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

use super::batch::{Batcher, Outcome, Pending, SLOT_POLL};
use super::config::{OnFailure, RedisConfig};
use super::connection::{Call, Reply, Store, Unavailable};
use super::limits::{fallback_quota, no_lease, slot_cap, too_large, window_us};
// The bucket dimensions, in the order their keys are sent (concurrency is the lease set).
use crate::limiter::gcra::BUCKETS;
use crate::sync::Locked;

/// The shared state of one family: cheap to clone.
#[derive(Clone)]
pub(crate) struct SharedFamily {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// `<prefix>:{<provider>:<family>:<tier>}`: one hash tag, so every key of the family
    /// lands in one Redis Cluster slot and the script may touch them all.
    tag: String,
    on_failure: OnFailure,
    share: f64,
    lease: Duration,
    /// Admits while Redis is away, at `share` of each limit.
    fallback: Limiter,
    /// This process's waiters, by lane and in arrival order, sent to Redis in batches.
    batcher: Batcher,
    /// The limits in force (the sender builds its calls from them).
    quota: Mutex<Quota>,
    /// Lease ids: unique to this process (pid and start time) and this family.
    process: String,
    next_lease: AtomicU64,
}

/// What a shared reservation must give back: its charge, and its concurrency slots.
pub(crate) struct Held {
    family: SharedFamily,
    lease: Option<Lease>,
    /// When it starts, in µs since the epoch on the server's clock.
    start_us: u64,
}

struct Lease {
    id: String,
    requests: u32,
    renewal: JoinHandle<()>,
}

impl SharedFamily {
    pub(crate) fn new(
        config: &RedisConfig,
        provider: &str,
        family: &str,
        tier: &str,
        quota: &Quota,
    ) -> Result<Self, Error> {
        let clean = |s: &str| s.replace(['{', '}'], "_");
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(SharedFamily {
            inner: Arc::new(Inner {
                store: Store::connect(config)?,
                tag: format!(
                    "{}:{{{}:{}:{}}}",
                    config.key_prefix(),
                    clean(provider),
                    clean(family),
                    clean(tier)
                ),
                on_failure: config.failure_policy(),
                share: config.share(),
                lease: config.lease_time(),
                fallback: Limiter::new(fallback_quota(quota, config.share())),
                batcher: Batcher::default(),
                quota: Mutex::new(quota.clone()),
                process: format!("{}-{started:x}", std::process::id()),
                next_lease: AtomicU64::new(0),
            }),
        })
    }

    /// The keys the script touches: hold, leases, then the limited buckets of `quota`.
    fn call(&self, quota: &Quota) -> (Call, Vec<Dimension>) {
        let tag = &self.inner.tag;
        let mut call = Call {
            keys: vec![format!("{tag}:hold"), format!("{tag}:leases")],
            args: Vec::with_capacity(2 + 4 * BUCKETS.len() + 5),
        };
        let mut dimensions = Vec::with_capacity(BUCKETS.len());
        for dimension in BUCKETS {
            if quota.capacity(dimension).is_some() && window_us(quota, dimension) > 0 {
                call.keys
                    .push(format!("{tag}:{}", dimension.env_suffix().to_lowercase()));
                dimensions.push(dimension);
            }
        }
        (call, dimensions)
    }

    /// Appends one bucket's arguments.
    fn bucket_args(call: &mut Call, quota: &Quota, dimension: Dimension, a: i128, b: i128) {
        let capacity = quota.capacity(dimension).unwrap_or(1);
        call.args.extend([
            capacity.to_string(),
            window_us(quota, dimension).to_string(),
            a.to_string(),
            b.to_string(),
        ]);
    }

    /// Reserves `cost` on the shared state, or on the fallback while Redis is away.
    ///
    /// The request queues in this process by `priority`'s lane and arrival order, and goes to
    /// Redis in a batch with the others queued (see `batch.rs`); it then sleeps until its
    /// start, as Redis scheduled it.
    async fn reserve(
        &self,
        limiter: &Limiter,
        cost: Cost,
        priority: Priority,
    ) -> Result<Reservation, Error> {
        let quota = limiter.quota();
        // Checked before any queue or round trip: too large fails now, whatever is waiting.
        if let Some(err) = too_large(&quota, &cost) {
            return Err(err);
        }
        let lease_id = format!(
            "{}-{}",
            self.inner.process,
            self.inner.next_lease.fetch_add(1, Ordering::Relaxed)
        );
        let answer = loop {
            let (reply, answer) = oneshot::channel();
            let pending = Pending {
                cost,
                lease_id: lease_id.clone(),
                reply,
            };
            if self.inner.batcher.push(pending, priority) {
                let family = self.clone();
                tokio::spawn(async move { family.send_batches().await });
            }
            // A dropped reply: the sender was cancelled with its runtime before it answered.
            // Queue again: this runtime starts a new sender.
            if let Ok(outcome) = answer.await {
                break outcome;
            }
        };
        match answer {
            Outcome::Admitted { wait, start_us } => {
                let lease = slot_cap(&quota, &cost).map(|_| self.lease(lease_id, cost.requests));
                // Built before the sleep: a caller dropped while it sleeps refunds.
                let reservation = limiter.shared_reservation(
                    cost,
                    Box::new(Held {
                        family: self.clone(),
                        lease,
                        start_us,
                    }),
                );
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(reservation)
            }
            Outcome::TooLarge { index } => {
                let (_, dimensions) = self.call(&quota);
                let dimension = dimensions[index.min(dimensions.len() - 1)];
                Err(Error::RequestTooLarge {
                    dimension,
                    requested: dimension.charge(&cost),
                    capacity: quota.capacity(dimension).unwrap_or(0),
                })
            }
            Outcome::Unavailable(why) => self.unavailable(why, cost, priority).await,
        }
    }

    /// One `batch` call reserving `requests` in order.
    pub(super) fn batch_call<'a>(
        &self,
        quota: &Quota,
        requests: impl ExactSizeIterator<Item = &'a Pending>,
    ) -> Call {
        let (mut call, dimensions) = self.call(quota);
        call.args.push("batch".to_owned());
        for dimension in &dimensions {
            Self::bucket_args(&mut call, quota, *dimension, 0, 0);
        }
        call.args.extend([
            quota.concurrency.map_or(0, u64::from).to_string(),
            "0".to_owned(),
            String::new(),
            self.inner.lease.as_micros().to_string(),
            "0".to_owned(),
            requests.len().to_string(),
        ]);
        for pending in requests {
            let takes_slot = slot_cap(quota, &pending.cost).is_some();
            call.args.push(if takes_slot {
                pending.cost.requests.to_string()
            } else {
                "0".to_owned()
            });
            call.args.push(pending.lease_id.clone());
            for dimension in &dimensions {
                call.args.push(dimension.charge(&pending.cost).to_string());
            }
        }
        call
    }

    /// Gives back a reservation whose caller left while its call was on the wire.
    pub(super) fn refund_abandoned(&self, quota: &Quota, cost: &Cost, lease_id: &str) {
        let takes_slot = slot_cap(quota, cost).is_some();
        let call = self.simple_call(
            quota,
            "adjust",
            |d| (d.charge(cost).into(), 0),
            [
                u8::from(takes_slot).to_string(),
                if takes_slot { cost.requests } else { 0 }.to_string(),
                lease_id.to_owned(),
                "0".to_owned(),
                "0".to_owned(),
            ],
        );
        self.send(call);
    }

    pub(super) fn batcher(&self) -> &Batcher {
        &self.inner.batcher
    }

    /// `<prefix>:{<provider>:<family>:<tier>}`, the family's hash tag.
    pub(super) fn tag(&self) -> &str {
        &self.inner.tag
    }

    pub(super) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(super) fn current_quota(&self) -> Quota {
        self.inner.quota.locked().clone()
    }

    async fn unavailable(
        &self,
        why: Unavailable,
        cost: Cost,
        priority: Priority,
    ) -> Result<Reservation, Error> {
        match self.inner.on_failure {
            OnFailure::Local => self.inner.fallback.acquire_with(cost, priority).await,
            OnFailure::Closed => Err(Error::BackendUnavailable {
                message: format!(
                    "{}; RATE_LIMITED_REDIS_ON_FAILURE=closed fails calls until it answers",
                    why.message()
                ),
            }),
        }
    }

    /// Keeps a lease alive while its request runs: a crashed process stops renewing, and its
    /// slots free themselves one lease time later.
    fn lease(&self, id: String, requests: u32) -> Lease {
        let family = self.clone();
        let renew_id = id.clone();
        let renewal = tokio::spawn(async move {
            let every = family.inner.lease / 3;
            let tag = &family.inner.tag;
            loop {
                tokio::time::sleep(every).await;
                // Only the lease set: no bucket is touched.
                let mut call = Call {
                    keys: vec![format!("{tag}:hold"), format!("{tag}:leases")],
                    args: vec!["renew".to_owned()],
                };
                call.args.extend([
                    "1".to_owned(),
                    requests.to_string(),
                    renew_id.clone(),
                    family.inner.lease.as_micros().to_string(),
                    "0".to_owned(),
                ]);
                // A failed renewal is retried on the next tick; the lease outlives a few.
                let _ = family.inner.store.run(&call).await;
            }
        });
        Lease {
            id,
            requests,
            renewal,
        }
    }

    /// Sends a script call without waiting for it (settles, holds, header feedback): the
    /// caller's request is not delayed, and an ambiguous failure is never retried.
    fn send(&self, call: Call) {
        let family = self.clone();
        super::spawn_detached(async move {
            let _ = family.inner.store.run(&call).await;
        });
    }

    fn simple_call(
        &self,
        quota: &Quota,
        mode: &str,
        per_bucket: impl Fn(Dimension) -> (i128, i128),
        tail: [String; 5],
    ) -> Call {
        let (mut call, dimensions) = self.call(quota);
        call.args.push(mode.to_owned());
        for dimension in dimensions {
            let (a, b) = per_bucket(dimension);
            Self::bucket_args(&mut call, quota, dimension, a, b);
        }
        call.args.extend(tail);
        call
    }

    /// Nobody in any process is admitted for `duration` (a 429's retry-after).
    pub(crate) fn hold(&self, quota: &Quota, duration: Duration) {
        self.inner.fallback.hold_for(duration);
        let call = self.simple_call(quota, "hold", |_| (0, 0), no_lease(duration.as_micros()));
        self.send(call);
    }

    /// Raises the shared units in use on `dimension` to at least `used`.
    pub(crate) fn tighten(&self, quota: &Quota, dimension: Dimension, used: u64) {
        let call = self.tighten_call(quota, dimension, used);
        self.send(call);
    }

    /// Like [`tighten`](SharedFamily::tighten), and tells what was in use on `dimension` in
    /// Redis before (`None` if Redis did not answer).
    pub(crate) fn tighten_reporting(
        &self,
        quota: &Quota,
        dimension: Dimension,
        used: u64,
    ) -> impl std::future::Future<Output = Option<u64>> + Send + 'static {
        let call = self.tighten_call(quota, dimension, used);
        let family = self.clone();
        async move {
            let before = family.inner.store.invoke(&call, |reply| match reply {
                [1, before] => Ok(u64::try_from(*before).unwrap_or(0)),
                other => Err(format!("unexpected reply to a tighten: {other:?}")),
            });
            before.await.ok()
        }
    }

    /// Tightens the fallback now and builds the script call for Redis.
    fn tighten_call(&self, quota: &Quota, dimension: Dimension, used: u64) -> Call {
        self.inner.fallback.tighten(dimension, used);
        self.simple_call(
            quota,
            "tighten",
            // -1: leave the other buckets alone.
            |d| {
                if d == dimension {
                    (used.into(), 0)
                } else {
                    (-1, 0)
                }
            },
            no_lease(0),
        )
    }

    /// New limits: the shared state reads them from every call; the fallback scales them.
    pub(crate) fn set_quota(&self, quota: &Quota) {
        *self.inner.quota.locked() = quota.clone();
        self.inner
            .fallback
            .set_quota(fallback_quota(quota, self.inner.share));
    }

    /// Whether Redis failed and has not answered since (calls use the fallback or fail).
    pub(crate) fn is_down(&self) -> bool {
        self.inner.store.is_down()
    }
}

/// The sender of this process's queued reservations.
impl SharedFamily {
    /// The sender: batches until the queue is empty.
    async fn send_batches(self) {
        /// Cancelled with its runtime, the sender hands its waiters back instead of leaving
        /// them queued for nobody.
        struct Lost<'a>(&'a Batcher, bool);
        impl Drop for Lost<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.sender_lost();
                }
            }
        }
        let mut lost = Lost(self.batcher(), false);
        self.send_until_empty().await;
        lost.1 = true;
    }

    async fn send_until_empty(&self) {
        while let Some(batch) = self.batcher().take() {
            let quota = self.current_quota();
            let call = self.batch_call(&quota, batch.iter().map(|(_, p)| p));
            let (now, replies) = match self.store().run_batch(&call).await {
                Ok(answer) => answer,
                Err(why) => {
                    // Each waiter falls back (or fails) on its own.
                    for (_, pending) in batch {
                        let _ = pending.reply.send(Outcome::Unavailable(why.clone()));
                    }
                    continue;
                }
            };
            let handled = replies.len();
            let mut batch = batch.into_iter();
            let mut pause = Duration::ZERO;
            for reply in replies {
                let (lane, pending) = batch.next().expect("one reply per request sent");
                let outcome = match reply {
                    Reply::Admitted { wait } => {
                        pause = wait;
                        Outcome::Admitted {
                            wait,
                            start_us: now
                                .saturating_add(u64::try_from(wait.as_micros()).unwrap_or(0)),
                        }
                    }
                    Reply::TooLarge { index } => Outcome::TooLarge { index },
                    Reply::NoSlot { retry } => {
                        // Not reserved: it keeps its place, and asks again.
                        self.batcher()
                            .put_back(std::iter::once((lane, pending)).chain(batch.by_ref()));
                        pause = retry.clamp(Duration::from_millis(1), SLOT_POLL);
                        break;
                    }
                };
                if let Err(Outcome::Admitted { .. }) = pending.reply.send(outcome) {
                    // It gave up while the call was on the wire: give the charge back.
                    self.refund_abandoned(&quota, &pending.cost, &pending.lease_id);
                }
            }
            debug_assert!(handled > 0, "the script handles at least one request");
            self.batcher().put_back(batch);
            if !pause.is_zero() {
                // One request of ours scheduled ahead at a time: the rest wait here, where a
                // higher lane can still go first.
                tokio::time::sleep(pause).await;
            }
        }
    }
}

impl std::fmt::Debug for SharedFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFamily")
            .field("tag", &self.inner.tag)
            .finish_non_exhaustive()
    }
}

impl SharedStore for SharedFamily {
    fn acquire(&self, limiter: &Limiter, cost: Cost, priority: Priority) -> SharedAcquire {
        let (family, limiter) = (self.clone(), limiter.clone());
        Box::pin(async move { family.reserve(&limiter, cost, priority).await })
    }

    fn set_quota(&self, quota: &Quota) {
        SharedFamily::set_quota(self, quota);
    }

    fn hold(&self, quota: &Quota, duration: Duration) {
        SharedFamily::hold(self, quota, duration);
    }

    fn tighten(&self, quota: &Quota, dimension: Dimension, used: u64) {
        SharedFamily::tighten(self, quota, dimension, used);
    }

    fn is_down(&self) -> bool {
        SharedFamily::is_down(self)
    }
}

impl SharedHold for Held {
    fn start(&self) -> std::time::SystemTime {
        Held::start(self)
    }

    fn release(self: Box<Self>, quota: &Quota, from: &Cost, to: &Cost) {
        Held::release(*self, quota, from, to);
    }
}

impl Held {
    /// When the reservation starts on the server's clock.
    pub(crate) fn start(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_micros(self.start_us)
    }

    /// Moves the shared charge from `from` to `to` and frees the concurrency slots.
    pub(crate) fn release(self, quota: &Quota, from: &Cost, to: &Cost) {
        let (limit, requests, id) = match &self.lease {
            Some(lease) => {
                lease.renewal.abort();
                (1, lease.requests, lease.id.clone())
            }
            None => (0, 0, String::new()),
        };
        if limit == 0 && from == to {
            return;
        }
        let call = self.family.simple_call(
            quota,
            "adjust",
            |d| (d.charge(from).into(), d.charge(to).into()),
            [
                limit.to_string(),
                requests.to_string(),
                id,
                "0".to_owned(),
                "0".to_owned(),
            ],
        );
        self.family.send(call);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
