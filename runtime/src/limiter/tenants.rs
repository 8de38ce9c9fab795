//! Many users on one key: the tenants of a limiter, their turns within a lane, their caps, and
//! how long their state is kept.
//!
//! **Fair share: start-time fair queuing on tokens.** Within a lane, each tenant with waiters
//! offers its oldest waiter (FIFO within a tenant), tagged with a virtual start time: the
//! lane's virtual time when it became the tenant's head, or the virtual finish of the
//! tenant's previous admission if that is later. The head with the smallest tag goes next;
//! admitting it moves the lane's virtual time to its tag and the tenant's finish to the tag
//! plus its tokens divided by the tenant's weight. This is weighted fair queuing in its
//! start-time form (SFQ, Goyal et al.), chosen over deficit round robin because a tenant that
//! arrives later is tagged with the virtual time *now*: it goes ahead of every backlogged
//! tenant's next request, so it waits for at most one admission per tenant already waiting
//! (deficit round robin would make it wait for the tenants ahead of it in the round, each
//! spending a whole quantum of several small requests), with no quantum to tune. A large
//! request at a tenant's head keeps its tag until it goes, however many small ones queue
//! behind it, so it is never starved by its own tenant. Tags count tokens (input plus
//! output, at least one per request), so weights 2:1 give 2:1 in tokens.
//!
//! **Calls without a tenant** are one more tenant of weight 1 with no cap: with no tenants at
//! all, each lane is one FIFO queue, exactly as before tenants existed.
//!
//! **Caps.** A tenant's cap is a [`Quota`] of its own (any dimension; headroom as set on that
//! quota, 1 by default). A head its cap does not admit leaves the turns until its cap
//! refills (or, for a concurrency cap, until one of its calls ends): the next tenant goes, and
//! the capped one comes back with its tag, first in line for what it is owed.
//!
//! **Memory.** A tenant's state exists while it has waiters or calls in flight under a cap;
//! an uncapped tenant's is dropped as soon as it has neither. A capped tenant whose last call
//! ended joins a queue of tenants to look at again a minute later (each tenant that arrives or
//! ends a call looks at two that are due): it is dropped then if its cap is full, else looked
//! at again a minute on. So a tenant calling steadily keeps its state, and the map holds the
//! tenants active, refilling, or idle for at most about a minute more (a day for a per-day
//! cap). A sweep of the whole map when it has doubled since the last one bounds it in any case.
//! A tenant that returns starts fresh: its first waiter is tagged with the lane's virtual time,
//! as any newcomer's (weights and caps set in code are policies, kept apart and never dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::task::Waker;

use super::gcra::{Buckets, Decision};
use super::lanes::LANES;
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;
use crate::units::tenant::Tenant;

/// A tenant, or `None` for calls made without one.
pub(super) type Key = Option<Tenant>;

/// The largest weight a tenant may have.
pub const MAX_TENANT_WEIGHT: u32 = 1_000;

/// Tags are tokens × this ÷ weight: divisible by every weight up to 16, so common weights
/// divide exactly.
const WEIGHT_SCALE: u128 = 720_720;

/// The map is swept of idle tenants once it holds this many, at the least.
const MIN_SWEEP: usize = 1_024;

/// How long after going idle a tenant whose cap is refilling is looked at again (ns).
const RECHECK_NS: u64 = 60_000_000_000;

/// How many due tenants each look at the queue takes on.
const RECHECKS_PER_CALL: usize = 2;

/// A tenant weight outside 1..=[`MAX_TENANT_WEIGHT`], given to
/// [`Limiter::set_tenant_weight`](crate::Limiter::set_tenant_weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant weight {0}: expected a whole number from 1 to 1000, the tenant's share \
     relative to the others' (default 1)"
)]
pub struct InvalidTenantWeight(pub u32);

/// One caller waiting for its turn.
pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) cost: Cost,
    pub(super) waker: Option<Waker>,
}

/// The head of a tenant's queue in one lane: its tag, and whether it sits out its cap.
#[derive(Clone, Copy, Default)]
pub(super) struct Head {
    pub(super) tag: u128,
    /// Until when (ns since the origin; `u64::MAX`: until one of its calls ends) the tenant's
    /// cap holds it out of the turns.
    pub(super) capped: Option<u64>,
}

/// A tenant's own limits and what it has in use against them.
pub(super) struct Cap {
    pub(super) buckets: Buckets,
    pub(super) concurrency: Option<u64>,
}

impl Cap {
    fn new(quota: &Quota) -> Self {
        let mut buckets = Buckets::new(quota);
        buckets.make_lean();
        Cap {
            buckets,
            concurrency: quota.concurrency.map(u64::from),
        }
    }
}

/// What the limiter keeps of one tenant while it is active.
#[derive(Default)]
pub(super) struct TenantState {
    pub(super) queues: [VecDeque<Waiter>; LANES],
    pub(super) heads: [Head; LANES],
    /// Per lane: the virtual finish of the tenant's last admission.
    pub(super) finish: [u128; LANES],
    /// Requests in flight that were charged on the cap.
    pub(super) in_flight: u64,
    pub(super) cap: Option<Box<Cap>>,
    pub(super) weight: u32,
    /// Whether it is in the queue of tenants to look at again.
    pub(super) refilling: bool,
}

/// What a tenant's cap says of a cost.
pub(super) enum CapCheck {
    Fits,
    /// Wait until this time (ns since origin), or for one of its calls to end when `None`.
    Wait(Option<u64>),
    TooLarge {
        dimension: Dimension,
        requested: u64,
        capacity: u64,
    },
}

impl TenantState {
    fn new(weight: u32, cap: Option<&Quota>) -> Self {
        TenantState {
            weight,
            cap: cap.map(|quota| Box::new(Cap::new(quota))),
            ..TenantState::default()
        }
    }

    pub(super) fn check_cap(&self, cost: &Cost, now: u64) -> CapCheck {
        let Some(cap) = &self.cap else {
            return CapCheck::Fits;
        };
        match cap_decision(cap.concurrency, cost, || cap.buckets.decide(cost, now)) {
            Err(too_large) => too_large,
            Ok(Decision::WaitUntil(at)) => CapCheck::Wait(Some(at)),
            Ok(_) => {
                let requests = u64::from(cost.requests);
                if cap
                    .concurrency
                    .is_some_and(|limit| self.in_flight + requests > limit)
                {
                    CapCheck::Wait(None)
                } else {
                    CapCheck::Fits
                }
            }
        }
    }

    /// Whether nothing is kept for the tenant but what a fresh state would hold.
    pub(super) fn idle(&self, now: u64) -> bool {
        self.in_flight == 0
            && self.queues.iter().all(VecDeque::is_empty)
            && self.cap.as_ref().is_none_or(|cap| cap.buckets.full(now))
    }

    /// Virtual time `cost` takes of the tenant's share.
    pub(super) fn span(&self, cost: &Cost) -> u128 {
        span(cost, self.weight)
    }
}

/// Virtual time `cost` takes of the share of a tenant of `weight`: its tokens (at least one)
/// divided by the weight, scaled.
pub(crate) fn span(cost: &Cost, weight: u32) -> u128 {
    tokens_span(cost.tokens(), weight)
}

/// [`span`] of `tokens`.
#[inline]
pub(crate) fn tokens_span(tokens: u64, weight: u32) -> u128 {
    let scaled = u128::from(tokens.max(1)) * WEIGHT_SCALE;
    // Weight 1 (every call without a tenant) skips the 128-bit division, a call of its own.
    if weight <= 1 {
        scaled
    } else {
        scaled / u128::from(weight)
    }
}

/// What a cap with a concurrency limit of `concurrency` and buckets that `decide` says of
/// `cost`: too large (`Err`) for the limit or a bucket, else the buckets' decision (calls in
/// flight not counted).
pub(super) fn cap_decision(
    concurrency: Option<u64>,
    cost: &Cost,
    decide: impl FnOnce() -> Decision,
) -> Result<Decision, CapCheck> {
    let requests = u64::from(cost.requests);
    if let Some(limit) = concurrency.filter(|limit| requests > *limit) {
        return Err(CapCheck::TooLarge {
            dimension: Dimension::Concurrency,
            requested: requests,
            capacity: limit,
        });
    }
    match decide() {
        Decision::TooLarge {
            dimension,
            requested,
            capacity,
        } => Err(CapCheck::TooLarge {
            dimension,
            requested,
            capacity,
        }),
        decision => Ok(decision),
    }
}

/// What to do with a tenant's state after its last waiter or call left: `Some(true)` drop it
/// (nothing kept a fresh state would not hold), `Some(false)` look at it again later (marked as
/// queued), `None` keep it as it is. With `linger` (one of its calls just ended), a capped
/// tenant is looked at again later even if its cap is full already: a tenant calling steadily
/// under a cap that refills between its calls keeps its state instead of remaking it each time.
pub(super) fn idle_verdict(state: &mut TenantState, now: u64, linger: bool) -> Option<bool> {
    if state.in_flight != 0 || !state.queues.iter().all(VecDeque::is_empty) {
        return None;
    }
    match &state.cap {
        None => Some(true),
        Some(cap) if !linger && cap.buckets.full(now) => Some(true),
        Some(_) if state.refilling => None,
        Some(_) => {
            state.refilling = true;
            Some(false)
        }
    }
}

/// Weights and caps set for tenants: kept whether or not the tenant is active.
#[derive(Default)]
pub(super) struct Policies {
    /// The cap of every tenant without one of its own.
    pub(super) default_cap: Option<Quota>,
    /// Caps set per tenant (`None`: no cap, whatever the default).
    pub(super) caps: HashMap<Tenant, Option<Quota>>,
    pub(super) weights: HashMap<Tenant, u32>,
}

impl Policies {
    pub(super) fn cap_of(&self, tenant: &Tenant) -> Option<&Quota> {
        match self.caps.get(tenant) {
            Some(cap) => cap.as_ref(),
            None => self.default_cap.as_ref(),
        }
    }

    pub(super) fn weight_of(&self, tenant: &Tenant) -> u32 {
        self.weights.get(tenant).copied().unwrap_or(1)
    }

    /// Whether some tenant may have a cap: if not, uncontended calls never look tenants up.
    pub(super) fn any_caps(&self) -> bool {
        self.default_cap.is_some() || self.caps.values().any(Option::is_some)
    }
}

/// Checks a cap given in code.
pub(super) fn validate_cap(cap: Option<&Quota>) -> Result<(), Error> {
    cap.map_or(Ok(()), Quota::validate)
}

/// Heads that may go, by (tag, id): the head of calls without a tenant kept apart, so that a
/// lane of those alone (every lane of a limiter without tenants) touches no map.
#[derive(Default)]
pub(super) struct Ready {
    anonymous: Option<(u128, u64)>,
    tenants: BTreeMap<(u128, u64), Key>,
}

/// The key of calls without a tenant, to lend out.
static NO_TENANT: Key = None;

impl Ready {
    #[inline]
    pub(super) fn insert(&mut self, at: (u128, u64), key: Key) {
        if key.is_none() {
            debug_assert!(self.anonymous.is_none(), "one head per tenant");
            self.anonymous = Some(at);
        } else {
            self.tenants.insert(at, key);
        }
    }

    /// Takes the head at `at` out; its tenant.
    #[inline]
    pub(super) fn remove(&mut self, at: &(u128, u64)) -> Option<Key> {
        if self.anonymous.as_ref() == Some(at) {
            self.anonymous = None;
            return Some(None);
        }
        self.tenants.remove(at)
    }

    /// The head that goes first, and its tenant.
    #[inline]
    pub(super) fn first(&self) -> Option<((u128, u64), &Key)> {
        let tenant = self.tenants.first_key_value().map(|(at, key)| (*at, key));
        match (self.anonymous, tenant) {
            (Some(anonymous), Some((at, _))) if anonymous < at => Some((anonymous, &NO_TENANT)),
            (Some(anonymous), None) => Some((anonymous, &NO_TENANT)),
            (_, tenant) => tenant,
        }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.anonymous.is_none() && self.tenants.is_empty()
    }
}

/// One priority lane: its tenants' heads in the order they go.
#[derive(Default)]
pub(super) struct Lane {
    /// Heads that may go.
    pub(super) ready: Ready,
    /// Heads held out by their caps, by (until, id).
    pub(super) capped: BTreeMap<(u64, u64), Key>,
    /// The tag of the lane's last admission.
    pub(super) virtual_time: u128,
    /// Waiters of every tenant in the lane.
    pub(super) waiting: usize,
}

/// Every tenant's state: calls without a tenant apart, so they never hash.
#[derive(Default)]
pub(super) struct Tenants {
    pub(super) anonymous: TenantState,
    pub(super) map: HashMap<Tenant, TenantState>,
    pub(super) policies: Policies,
    /// Whether any tenant may have a cap (see [`Policies::any_caps`]), kept up to date.
    pub(super) capped: bool,
    sweep_at: usize,
    /// Idle tenants whose caps were refilling, and when to look at them again.
    refilling: VecDeque<(u64, Tenant)>,
}

impl Tenants {
    pub(super) fn new() -> Self {
        Tenants {
            anonymous: TenantState::new(1, None),
            sweep_at: MIN_SWEEP,
            ..Tenants::default()
        }
    }

    #[inline]
    pub(super) fn get(&self, key: &Key) -> Option<&TenantState> {
        match key {
            None => Some(&self.anonymous),
            Some(tenant) => self.map.get(tenant),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut TenantState> {
        match key {
            None => Some(&mut self.anonymous),
            Some(tenant) => self.map.get_mut(tenant),
        }
    }

    /// The tenant's state, made fresh from its policies if it has none; sweeps idle tenants
    /// first when the map has grown enough.
    pub(super) fn entry(&mut self, key: &Key, now: u64) -> &mut TenantState {
        let Some(tenant) = key else {
            return &mut self.anonymous;
        };
        self.recheck(now);
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, state| !state.idle(now));
            self.shrink();
            self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
        }
        let Tenants { map, policies, .. } = self;
        map.entry(tenant.clone()).or_insert_with(|| {
            TenantState::new(policies.weight_of(tenant), policies.cap_of(tenant))
        })
    }

    /// Drops the tenant's state if it is idle, or queues it to be looked at again if only its
    /// cap is still refilling.
    pub(super) fn forget_if_idle(&mut self, key: &Key, now: u64) {
        let Some(tenant) = key else {
            return;
        };
        let Some(state) = self.map.get_mut(tenant) else {
            return;
        };
        let verdict = idle_verdict(state, now, false);
        self.settle_idle(tenant, now, verdict);
    }

    /// Acts on an [`idle_verdict`] of `tenant`'s state.
    pub(super) fn settle_idle(&mut self, tenant: &Tenant, now: u64, verdict: Option<bool>) {
        match verdict {
            Some(true) => {
                self.map.remove(tenant);
                self.shrink();
            }
            Some(false) => self
                .refilling
                .push_back((now.saturating_add(RECHECK_NS), tenant.clone())),
            None => {}
        }
        self.recheck(now);
    }

    /// Gives memory back once most of the map's room is empty (a burst of tenants has gone).
    fn shrink(&mut self) {
        let room = self.map.len().max(MIN_SWEEP) * 4;
        if self.map.capacity() > room {
            self.map.shrink_to(self.map.len() * 2);
        }
        if self.refilling.capacity() > self.refilling.len().max(MIN_SWEEP) * 4 {
            self.refilling.shrink_to(self.refilling.len() * 2);
        }
    }

    /// Looks at up to [`RECHECKS_PER_CALL`] idle tenants that are due: drops those whose caps
    /// are full, looks again later at those still refilling.
    fn recheck(&mut self, now: u64) {
        for _ in 0..RECHECKS_PER_CALL {
            match self.refilling.front() {
                Some((due, _)) if *due <= now => {}
                _ => return,
            }
            let (_, tenant) = self.refilling.pop_front().expect("just seen");
            let Some(state) = self.map.get_mut(&tenant) else {
                continue;
            };
            if state.idle(now) {
                self.map.remove(&tenant);
                self.shrink();
            } else if state.in_flight == 0 && state.queues.iter().all(VecDeque::is_empty) {
                self.refilling
                    .push_back((now.saturating_add(RECHECK_NS), tenant));
            } else {
                // Active again: queued anew when it goes idle.
                state.refilling = false;
            }
        }
    }

    /// Applies the policies to a tenant's kept state after they changed.
    pub(super) fn refresh_policies(&mut self, tenant: &Tenant, now: u64) {
        let weight = self.policies.weight_of(tenant);
        let cap = self.policies.cap_of(tenant).cloned();
        if let Some(state) = self.map.get_mut(tenant) {
            apply(state, weight, cap.as_ref(), now);
        }
        self.capped = self.policies.any_caps();
    }

    /// Applies a new default cap to every kept tenant without a cap of its own.
    pub(super) fn refresh_default(&mut self, now: u64) {
        let Tenants { map, policies, .. } = self;
        for (tenant, state) in map.iter_mut() {
            if !policies.caps.contains_key(tenant) {
                apply(
                    state,
                    policies.weight_of(tenant),
                    policies.default_cap.as_ref(),
                    now,
                );
            }
        }
        self.capped = self.policies.any_caps();
    }
}

fn apply(state: &mut TenantState, weight: u32, cap: Option<&Quota>, now: u64) {
    state.weight = weight;
    match (&mut state.cap, cap) {
        (Some(current), Some(quota)) => {
            current.buckets.set_quota(quota, now);
            current.buckets.make_lean();
            current.concurrency = quota.concurrency.map(u64::from);
        }
        (current, quota) => *current = quota.map(|quota| Box::new(Cap::new(quota))),
    }
}
