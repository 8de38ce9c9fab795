//! One limit family whose state lives in Redis: how a reservation is taken, and what happens
//! while Redis is away. The script calls are built in `calls.rs`, a reservation's hold on the
//! shared state is in `held.rs`, and the sender of this process's waiters in `sender.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use crate::limiter::acquire::SharedAcquire;
use crate::limiter::gcra::BUCKETS;
use crate::limiter::lanes::Priority;
use crate::limiter::{Limiter, Reservation, SharedMark, SharedStore};
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

use super::batch::{Batcher, Outcome, Pending, Queued, SENDER_STALL};
use super::config::{OnFailure, RedisConfig};
use super::connection::{Call, Store, Unavailable};
use super::limits::{fallback_quota, too_large};
use super::recent::{FallbackHeld, Recent, Through};
use super::tenants::{check_shared_cap, too_large_for_cap, TenantCap};
use crate::sync::Locked;
use crate::units::tenant::Tenant;

/// The keys every call names before the buckets': hold, leases, scheduled ahead, batches
/// voided, epoch, batches run (see `family.lua`).
pub(super) const FIXED_KEYS: usize = 6;

/// The shared state of one family: cheap to clone.
#[derive(Clone)]
pub(crate) struct SharedFamily {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    /// `<prefix>:{<provider>:<family>:<tier>}`: one hash tag, so every key of the family
    /// lands in one Redis Cluster slot and the script may touch them all.
    pub(super) tag: String,
    /// `<prefix>:{<provider>:<family>}:budget:`, the start of its tenants' budget keys: one
    /// hash tag for the family's every tier, as its budgets are.
    pub(super) budget_prefix: String,
    /// The family's keys, made once: the [`FIXED_KEYS`], then one bucket per dimension of
    /// [`BUCKETS`], in its order, then one window log per dimension, in the same order.
    pub(super) keys: Vec<Arc<str>>,
    pub(super) on_failure: OnFailure,
    pub(super) share: f64,
    pub(super) lease: Duration,
    /// Admits while Redis is away, at `share` of each limit.
    pub(super) fallback: Limiter,
    /// This process's waiters, by lane and in arrival order, sent to Redis in batches.
    pub(super) batcher: Batcher,
    /// The limits in force (the sender builds its calls from them).
    pub(super) quota: Mutex<Quota>,
    /// The limits the family was configured with: what is read back from Redis is bounded
    /// around them.
    pub(super) configured: Quota,
    /// Lease, reservation and batch ids: unique to this process (pid and start time) and
    /// this family.
    process: String,
    next_id: AtomicU64,
    /// This process's reservation scheduled ahead, while the sender waits for its start.
    pub(super) ahead: Mutex<Ahead>,
    /// Wakes the sender from that wait: a cancellation, a refund, a freed slot, a raised limit.
    pub(super) wake: Notify,
    /// The last shared learning that was not adopted, as logged (logged again when it changes).
    pub(super) rejected_learning: Mutex<String>,
    /// What this process spent lately, to write back what Redis does not know.
    pub(super) recent: Arc<Recent>,
    /// The store's epoch as this process last saw it (`None`: not yet): another one means the
    /// store lost its state since.
    pub(super) epoch: Mutex<Option<u64>>,
    /// The leases of this process's requests still running (id and slots), to add again to a
    /// store that lost them.
    pub(super) live: Mutex<std::collections::HashMap<String, u32>>,
    /// Until when this process last held everyone (a 429), to hold a store that lost it again.
    pub(super) held_until: Mutex<Option<tokio::time::Instant>>,
    /// The settles on their way to Redis: a tightening goes after those sent before it.
    settles: Mutex<Settles>,
    /// Told when a settle is done.
    settled: Notify,
}

/// The settles on their way to Redis, by sequence number: those from `first` on, each with
/// whether it is done (settles end out of order); and how many tightenings wait for them.
#[derive(Default)]
struct Settles {
    first: u64,
    done: std::collections::VecDeque<bool>,
    waiting: usize,
}

impl Settles {
    /// A new settle's number.
    fn start(&mut self) -> u64 {
        self.done.push_back(false);
        self.first + self.done.len() as u64 - 1
    }

    /// Settle `number` is done; whether a tightening waits.
    fn finish(&mut self, number: u64) -> bool {
        if let Some(done) = number
            .checked_sub(self.first)
            .and_then(|i| self.done.get_mut(usize::try_from(i).ok()?))
        {
            *done = true;
        }
        while self.done.front() == Some(&true) {
            self.done.pop_front();
            self.first += 1;
        }
        self.waiting > 0
    }

    /// The number the next settle gets.
    fn next(&self) -> u64 {
        self.first + self.done.len() as u64
    }
}

/// The sender's reservation scheduled ahead, if any.
#[derive(Default)]
pub(super) enum Ahead {
    #[default]
    None,
    /// Admitted with a wait: the sender waits for its start before scheduling another.
    Scheduled(String),
    /// Cancelled before its start: the sender sends this refund first (so that the next
    /// batch is charged after it), then goes on at once.
    Cancelled(Call),
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
        let tag = format!(
            "{}:{{{}:{}:{}}}",
            config.key_prefix(),
            clean(provider),
            clean(family),
            clean(tier)
        );
        let names = ["hold", "leases", "ahead", "voided", "epoch", "ran"].map(str::to_owned);
        let buckets = BUCKETS.map(|d| d.env_suffix().to_lowercase());
        let logs = BUCKETS.map(|d| format!("log:{}", d.env_suffix().to_lowercase()));
        let keys = names.into_iter().chain(buckets).chain(logs);
        Ok(SharedFamily {
            inner: Arc::new(Inner {
                store: Store::connect(config)?,
                keys: keys
                    .map(|name| Arc::from(format!("{tag}:{name}")))
                    .collect(),
                tag,
                budget_prefix: format!(
                    "{}:{{{}:{}}}:budget:",
                    config.key_prefix(),
                    clean(provider),
                    clean(family)
                ),
                on_failure: config.failure_policy(),
                share: config.share(),
                lease: config.lease_time(),
                fallback: Limiter::new(fallback_quota(quota, config.share())),
                batcher: Batcher::default(),
                quota: Mutex::new(quota.clone()),
                configured: quota.clone(),
                process: format!("{}-{started:x}", std::process::id()),
                next_id: AtomicU64::new(0),
                ahead: Mutex::new(Ahead::None),
                wake: Notify::new(),
                rejected_learning: Mutex::new(String::new()),
                recent: Arc::new(Recent::new()),
                epoch: Mutex::new(None),
                live: Mutex::default(),
                held_until: Mutex::new(None),
                settles: Mutex::default(),
                settled: Notify::new(),
            }),
        })
    }

    /// A new id, unique to this process and family (`b` for a batch, `r` for a reservation).
    pub(super) fn new_id(&self, kind: char) -> String {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{kind}{n}", self.inner.process)
    }

    /// Reserves `cost` on the shared state, or on the fallback while Redis is away.
    ///
    /// The request queues in this process by `priority`'s lane and arrival order, and goes to
    /// Redis in a batch with the others queued (see `batch.rs`); it then sleeps until its
    /// start, as Redis scheduled it. A request for a `tenant` with a cap is charged on the
    /// tenant's buckets too, in the same call; while its cap has no room, the tenant sits out
    /// of this process's turns (see `tenants.rs`).
    async fn reserve(
        &self,
        limiter: &Limiter,
        cost: Cost,
        priority: Priority,
        tenant: Option<&Tenant>,
    ) -> Result<Reservation, Error> {
        // Checked before any queue or round trip: too large fails now, whatever is waiting.
        if let Some(err) = too_large(&limiter.quota(), &cost) {
            return Err(err);
        }
        let cap = tenant.and_then(|tenant| self.tenant_cap(limiter, tenant));
        if let Some(err) = cap.as_deref().and_then(|cap| too_large_for_cap(cap, &cost)) {
            return Err(err);
        }
        let weight = tenant.map_or(1, |tenant| limiter.tenant_weight(tenant));
        let id = self.new_id('r');
        let answer = loop {
            let (reply, answer) = oneshot::channel();
            let pending = Pending {
                cost,
                lease_id: id.clone(),
                reply,
                tenant: tenant.cloned(),
                weight,
                cap: cap.clone(),
                turn: None,
            };
            let answer = match self.inner.batcher.push(pending, priority) {
                Queued::Start(number) => {
                    self.start_sender(number);
                    answer.await
                }
                Queued::Here => answer.await,
                Queued::Elsewhere => self.watching_the_sender(answer).await,
            };
            // A dropped reply: the sender was cancelled with its runtime before it answered.
            // Queue again: this runtime starts a new sender.
            if let Ok(outcome) = answer {
                break outcome;
            }
        };
        match answer {
            Outcome::Admitted(admission) => {
                let mut admission = admission.claim();
                let wait = admission.wait;
                let mark = SharedMark {
                    start_us: admission.start_us,
                    levels: std::mem::take(&mut admission.marks),
                    starts_at: tokio::time::Instant::now() + wait,
                };
                self.keep_fallback_in_step(&mark);
                let nothing = Cost::default();
                let recent = &self.inner.recent;
                recent.record(&admission.quota, &nothing, &cost, Through::Redis);
                // Built before the sleep: a caller dropped while it sleeps refunds.
                let held = self.held(id, cost, admission, cap);
                let reservation =
                    limiter.shared_reservation_marked(cost, held, mark, tenant.cloned());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(reservation)
            }
            Outcome::TooLarge {
                dimension,
                capacity,
            } => Err(Error::RequestTooLarge {
                dimension,
                requested: dimension.charge(&cost),
                capacity,
            }),
            Outcome::Unavailable(why) => {
                match self.unavailable(limiter, why, cost, priority, tenant).await {
                    Some(reservation) => reservation,
                    // Redis answers again: queue there again.
                    None => Box::pin(self.reserve(limiter, cost, priority, tenant)).await,
                }
            }
        }
    }

    fn start_sender(&self, number: u64) {
        let family = self.clone();
        tokio::spawn(async move { family.send_batches(number).await });
    }

    /// Waits for `answer` from the sender on another runtime; if that one shows no progress
    /// for [`SENDER_STALL`] (its runtime is not driven), starts one here that takes over.
    async fn watching_the_sender(
        &self,
        mut answer: oneshot::Receiver<Outcome>,
    ) -> Result<Outcome, oneshot::error::RecvError> {
        loop {
            let seen = self.inner.batcher.progress();
            tokio::select! {
                outcome = &mut answer => return outcome,
                () = tokio::time::sleep(SENDER_STALL) => {
                    if let Some(number) = self.inner.batcher.take_over(seen) {
                        tracing::debug!(
                            tag = %self.tag(),
                            "the limiter's sender on another runtime is not driven: one on \
                             this runtime takes over"
                        );
                        self.start_sender(number);
                        return answer.await;
                    }
                }
            }
        }
    }

    /// `tenant`'s cap on this family as `limiter` holds it, with its keys; `None` when the
    /// tenant has no cap.
    pub(super) fn tenant_cap(
        &self,
        limiter: &crate::limiter::Limiter,
        tenant: &Tenant,
    ) -> Option<Arc<TenantCap>> {
        let quota = limiter.tenant_cap(tenant)?;
        let keys = Self::bucket_dimensions(&quota)
            .into_iter()
            .map(|dimension| {
                let name = dimension.env_suffix().to_lowercase();
                let key = format!("{}:tenant:{}:{name}", self.tag(), tenant.as_str());
                (dimension, Arc::from(key))
            })
            .collect();
        Some(Arc::new(TenantCap { quota, keys }))
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

    /// Keeps the fallback as full as Redis is, at its share: an outage then starts where the
    /// fleet was (at the limit, the fallback admits at its share's rate, with no burst).
    fn keep_fallback_in_step(&self, mark: &SharedMark) {
        for &(dimension, level) in &mark.levels {
            self.inner
                .fallback
                .tighten(dimension, self.fallback_part(level));
        }
    }

    /// Gives the fallback `tenant`'s cap at the fallback's share, and its weight, when they
    /// differ from what it has: while Redis is away, fair share and caps hold in this process.
    fn fallback_cap(&self, limiter: &Limiter, tenant: &Tenant) {
        let fallback = &self.inner.fallback;
        let scaled = |cap: Quota| fallback_quota(&cap, self.inner.share);
        let default = limiter.default_tenant_cap().map(scaled);
        // Checked when they were set on the limiter.
        if fallback.default_tenant_cap() != default {
            let _ = fallback.set_default_tenant_cap(default.clone());
        }
        // A cap of the tenant's own only (the default one is the fallback's default).
        let own = limiter.tenant_cap(tenant).map(scaled);
        if own != default && fallback.tenant_cap(tenant) != own {
            let _ = fallback.set_tenant_cap(tenant, own);
        }
        let weight = limiter.tenant_weight(tenant);
        if fallback.tenant_weight(tenant) != weight {
            let _ = fallback.set_tenant_weight(tenant, weight);
        }
    }

    /// The fallback's part of `units` the fleet has in use: its share, rounded up.
    pub(super) fn fallback_part(&self, units: u64) -> u64 {
        (units as f64 * self.inner.share).ceil() as u64
    }

    /// Redis did not take the reservation: the fallback does (recorded, to be written back to
    /// Redis when it answers), or the call fails, as configured. A waiter queued on the
    /// fallback because Redis is down goes back to Redis when it answers again (`None`): the
    /// fallback's rate is a share of the limit, and its queue may be long.
    async fn unavailable(
        &self,
        limiter: &Limiter,
        why: Unavailable,
        cost: Cost,
        priority: Priority,
        tenant: Option<&Tenant>,
    ) -> Option<Result<Reservation, Error>> {
        match self.inner.on_failure {
            OnFailure::Local => {
                let back = self.store().back();
                tokio::pin!(back);
                back.as_mut().enable();
                let down = !matches!(why, Unavailable::Rejected(_));
                if down && !self.is_down() {
                    return None;
                }
                let acquire = match tenant {
                    Some(tenant) => {
                        self.fallback_cap(limiter, tenant);
                        self.inner.fallback.acquire_for(cost, priority, tenant)
                    }
                    None => self.inner.fallback.acquire_with(cost, priority),
                };
                let reservation = if down {
                    tokio::select! {
                        reservation = acquire => reservation,
                        () = back => return None,
                    }
                } else {
                    acquire.await
                };
                let reservation = match reservation {
                    Ok(reservation) => reservation,
                    Err(e) => return Some(Err(e)),
                };
                let quota = self.current_quota();
                let recent = Arc::clone(&self.inner.recent);
                recent.record(&quota, &Cost::default(), &cost, Through::Fallback);
                let held = FallbackHeld {
                    recent,
                    quota,
                    reservation,
                };
                let reservation = limiter.shared_reservation(cost, Box::new(held));
                Some(Ok(reservation.with_tenant(tenant.cloned())))
            }
            OnFailure::Closed => Some(Err(Error::BackendUnavailable {
                message: format!(
                    "{}; RATE_LIMITED_REDIS_ON_FAILURE=closed fails calls until it answers",
                    why.message()
                ),
            })),
        }
    }

    /// Sends a script call without waiting for it (settles, holds, header feedback): the
    /// caller's request is not delayed, and an ambiguous failure is never retried. A settle
    /// (a call sent `once`) is tracked until it is done, for the tightenings after it.
    pub(super) fn send(&self, call: Call) {
        let family = self.clone();
        if !call.once {
            super::spawn_detached(async move {
                let _ = family.inner.store.run(&call).await;
            });
            return;
        }
        let number = self.inner.settles.locked().start();
        /// Done (or dropped with its runtime): no tightening waits for it.
        struct Done(SharedFamily, u64);
        impl Drop for Done {
            fn drop(&mut self) {
                let waiting = self.0.inner.settles.locked().finish(self.1);
                if waiting {
                    self.0.inner.settled.notify_waiters();
                }
            }
        }
        super::spawn_detached(async move {
            let done = Done(family, number);
            let _ = done.0.inner.store.run(&call).await;
        });
    }

    /// Waits until every settle sent before `before` (a number taken with
    /// [`settles_sent`](Self::settles_sent)) is done: the server's count in an answer's
    /// headers includes what those settles correct, so a tightening to it must land after
    /// them, or their refunds would take it back below the server's count.
    async fn after_settles(&self, before: u64) {
        /// Counted while it waits, so that finishing settles wake it.
        struct Waiting<'a>(&'a Mutex<Settles>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.locked().waiting -= 1;
            }
        }
        let mut waiting = None;
        loop {
            let settled = self.inner.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut settles = self.inner.settles.locked();
                if settles.first >= before {
                    return;
                }
                if waiting.is_none() {
                    settles.waiting += 1;
                    waiting = Some(Waiting(&self.inner.settles));
                }
            }
            settled.await;
        }
    }

    /// The number of the next settle: [`after_settles`](Self::after_settles) with it waits
    /// for every settle sent until now.
    fn settles_sent(&self) -> u64 {
        self.inner.settles.locked().next()
    }

    /// Nobody in any process is admitted for `duration` (a 429's retry-after). A zero hold
    /// (`retry-after: 0`, a date in the past) holds nobody and sends nothing.
    pub(crate) fn hold(&self, _quota: &Quota, duration: Duration) {
        if duration.as_micros() == 0 {
            return;
        }
        let until = tokio::time::Instant::now() + duration;
        let mut held_until = self.inner.held_until.locked();
        *held_until = Some(held_until.map_or(until, |before| before.max(until)));
        drop(held_until);
        self.inner.fallback.hold_for(duration);
        self.send(self.hold_call(duration));
    }

    /// Raises the shared units in use on `dimension` to at least `used`, after the settles
    /// sent before.
    pub(crate) fn tighten(&self, quota: &Quota, dimension: Dimension, used: u64) {
        let reporting = self.tighten_reporting(quota, dimension, used, None, None);
        super::spawn_detached(async move {
            reporting.await;
        });
    }

    /// Like [`tighten`](SharedFamily::tighten), with the request's `mark` (its start in µs on
    /// the server's clock, and the units in use on `dimension` just after its charge) and the
    /// server's `processing` time when known, and tells what Redis held on `dimension` at the
    /// mark (before, without one) and what it charged since (`None` if Redis did not answer).
    pub(crate) fn tighten_reporting(
        &self,
        quota: &Quota,
        dimension: Dimension,
        used: u64,
        mark: Option<(u64, u64)>,
        processing: Option<Duration>,
    ) -> impl std::future::Future<Output = Option<(u64, u64)>> + Send + 'static {
        let call = self.tighten_call(quota, dimension, used, mark, processing);
        let family = self.clone();
        let settles = self.settles_sent();
        async move {
            family.after_settles(settles).await;
            let before = family.inner.store.invoke(&call, |reply| match reply {
                [1, held, since] => Ok((
                    u64::try_from(*held).unwrap_or(0),
                    u64::try_from(*since).unwrap_or(0),
                )),
                other => Err(format!("an unexpected reply to a tighten: {other:?}")),
            });
            before.await.ok()
        }
    }

    /// New limits: the shared buckets keep the units they have in use (the script rescales
    /// them once for the whole fleet), the calls carry the new limits from now on, and the
    /// fallback scales them.
    /// When `cost` would be admitted on the shared state if it asked now with nobody ahead of
    /// it (one round trip, nothing written); `None` while Redis is away.
    /// With `cap`, no sooner than the tenant's cap has room for it too.
    pub(crate) async fn forecast(
        &self,
        quota: &Quota,
        cost: &Cost,
        cap: Option<&TenantCap>,
    ) -> Option<crate::limiter::SharedForecast> {
        use crate::limiter::SharedForecast;
        let dimensions = Self::bucket_dimensions(quota);
        let call = self.peek_call(quota, cost, cap);
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        let answer = self.store().invoke(&call, |reply| match *reply {
            [_, 1, wait] => Ok(SharedForecast::After(us(wait))),
            [_, 0, retry] => Ok(SharedForecast::OnRelease(us(retry))),
            [_, -1, i] => usize::try_from(i - 1)
                .ok()
                .and_then(|i| dimensions.get(i).copied())
                .map(SharedForecast::TooLarge)
                .ok_or_else(|| format!("a peek names bucket {i} of {}", dimensions.len())),
            ref other => Err(format!("an unexpected reply to a peek: {other:?}")),
        });
        answer.await.ok()
    }

    pub(crate) fn set_quota(&self, quota: &Quota) {
        let old = std::mem::replace(&mut *self.inner.quota.locked(), quota.clone());
        self.inner
            .fallback
            .set_quota(fallback_quota(quota, self.inner.share));
        if let Some(call) = self.requota_call(&old, quota) {
            self.send(call);
        }
        // A raised limit may let this process's queue go at once.
        let raised = |d: Dimension| match (old.capacity(d), quota.capacity(d)) {
            (Some(before), Some(now)) => now > before,
            (Some(_), None) => true,
            _ => false,
        };
        if Dimension::ALL.into_iter().any(raised) {
            self.inner.wake.notify_one();
        }
    }

    /// Whether Redis failed and has not answered since (calls use the fallback or fail).
    pub(crate) fn is_down(&self) -> bool {
        self.inner.store.is_down()
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
        Box::pin(async move { family.reserve(&limiter, cost, priority, None).await })
    }

    fn acquire_for(
        &self,
        limiter: &Limiter,
        cost: Cost,
        priority: Priority,
        tenant: &Tenant,
    ) -> SharedAcquire {
        let (family, limiter, tenant) = (self.clone(), limiter.clone(), tenant.clone());
        Box::pin(async move {
            family
                .reserve(&limiter, cost, priority, Some(&tenant))
                .await
        })
    }

    fn check_tenant_cap(&self, cap: &Quota) -> Result<(), Error> {
        check_shared_cap(cap)
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

    fn forecast(&self, quota: &Quota, cost: &Cost) -> crate::limiter::SharedForecastFuture {
        let (family, quota, cost) = (self.clone(), quota.clone(), *cost);
        Box::pin(async move { family.forecast(&quota, &cost, None).await })
    }

    fn forecast_for(
        &self,
        limiter: &Limiter,
        quota: &Quota,
        cost: &Cost,
        tenant: &Tenant,
    ) -> crate::limiter::SharedForecastFuture {
        let cap = self.tenant_cap(limiter, tenant);
        let (family, quota, cost) = (self.clone(), quota.clone(), *cost);
        Box::pin(async move { family.forecast(&quota, &cost, cap.as_deref()).await })
    }

    fn is_down(&self) -> bool {
        SharedFamily::is_down(self)
    }
}
