//! The paths users write: the `ratelimited` facade is `pub use ratelimited_runtime::facade::*`
//! plus the attribute. Not a public API of this crate.
//!
//! The layout lives here, not in the facade, so that this crate's doc examples, rendered on
//! the facade's pages, can be written with the facade's paths and still compile as this
//! crate's doctests, where the facade is not a dependency: an example opens with the hidden
//! line `# use ratelimited_runtime::facade as ratelimited;` and then says `use ratelimited::..`.

pub use crate::answers::classify::{Classify, Verdict};
pub use crate::answers::usage::ReportUsage;
pub use crate::call::error::CallError;
pub use crate::limiter::lanes::Priority;
pub use crate::limiter::Limiter;
pub use crate::model::output::{MaxOutput, OutputBudget};
pub use crate::model::tokens::estimate::EstimateTokens;
pub use crate::registry::Registry;
pub use crate::units::cost::Usage;
pub use crate::units::error::Error;
pub use crate::units::quota::Quota;
pub use crate::units::tenant::Tenant;

/// The rest of the limiter (the [`Limiter`](crate::Limiter), its [`Quota`](crate::Quota) and
/// [`Priority`](crate::Priority) lanes are at the root): what one request costs, the
/// reservation it holds, and the trait a backend implements to share the state between
/// processes.
pub mod limiter {
    pub use crate::limiter::acquire::SharedAcquire;
    pub use crate::limiter::{
        Acquire, Forecast, InvalidLaneShare, InvalidTenantWeight, Reservation, SharedForecast,
        SharedForecastFuture, SharedHold, SharedStore, TryAcquireError, DEFAULT_LANE_SHARE,
        MAX_TENANT_WEIGHT,
    };
    pub use crate::units::cost::{Cost, Dimension};
    pub use crate::units::quota::{Charged, Window};
}

/// What a [`Registry`](crate::Registry) hands out: a model's limiter with its profile (the
/// guard of a scoped registry is [`testing::ScopeGuard`](crate::testing::ScopeGuard)).
pub mod registry {
    pub use crate::registry::ModelLimiter;
}

/// Deployment pools: one logical model served by several deployments (Azure regions, a
/// provisioned deployment with pay-as-you-go spill-over, two projects), each attempt routed to
/// the deployment that admits it soonest. Define them with `RATE_LIMITED_POOL_<NAME>` or
/// [`Registry::with_pool`](crate::Registry::with_pool), get one with
/// [`Registry::pool`](crate::Registry::pool).
///
/// On an annotated function, `#[rate_limited(pool = "gpt-4o", deployment = deployment)]` in
/// place of `model = ..` binds each attempt's [`Deployment`](pool::Deployment) in the body (see
/// the attribute's `pool` and `deployment` keys); without the attribute,
/// [`PoolCall`](pool::PoolCall) runs the same loop, and [`Pool::acquire`](pool::Pool::acquire)
/// reserves on the deployment a [`PoolReservation`](pool::PoolReservation) names.
pub mod pool {
    pub use crate::call::pool::{PoolAttempt, PoolCall};
    pub use crate::call::Next;
    pub use crate::config::pool::{DeploymentConfig, PoolConfig, Routing, DEFAULT_QUOTA_COOLDOWN};
    pub use crate::pool::{Deployment, DeploymentStats, Pool, PoolReservation, PoolStats};
    pub use crate::units::error::Refusal;
}

/// The last error a spent retry budget kept (the error types themselves,
/// [`Error`](crate::Error) and [`CallError`](crate::CallError), are at the root).
pub mod error {
    pub use crate::units::error::LastError;
}

/// What a long run has done so far, per limit family:
/// [`snapshot`](crate::registry::stats_snapshot) reads the current registry's.
pub mod stats {
    pub use crate::family::breaker::BreakerState;
    pub use crate::family::stats::{FamilyStats, RetryCounts, Stats, TenantStats};
    pub use crate::family::tenants::{TENANTS_TRACKED, TOP_TENANTS};
    pub use crate::registry::stats_snapshot as snapshot;
}

/// Spend limits: how many tokens and dollars a family, or the whole process, may still use.
pub mod spend {
    pub use crate::family::spend::BudgetLeft;
    pub use crate::units::money::{Amount, BudgetPeriod, SpendLimit};
}

/// What a family learns from its server's answers: the opening burst before the first one and
/// the correction of the prompt estimate.
pub mod feedback {
    pub use crate::family::feedback::{
        ChargeCorrection, CORRECTION_HALF_LIFE, MAX_CORRECTION, OPENING_BURST_FRACTION,
        OPENING_MAX_WAIT,
    };
}

/// Classifying failed HTTP responses, `Retry-After` hints, rate-limit headers, and a value
/// that carries its response's headers.
pub mod http {
    pub use crate::answers::http::*;
    pub use crate::answers::usage::WithHeaders;
}

#[doc(inline)]
pub use crate::call::stream;
#[doc(inline)]
pub use crate::config;
#[doc(inline)]
pub use crate::family::events;
#[doc(inline)]
pub use crate::model::{prices, tiers, tokens};
#[doc(inline)]
pub use crate::testing;

#[doc(inline)]
#[cfg(any(
    feature = "reqwest",
    feature = "async-openai",
    feature = "reqwest-middleware",
    feature = "tower"
))]
pub use crate::integrations;

/// Limits shared by every process and machine pointed at one Redis (feature `redis`): set
/// `RATE_LIMITED_REDIS_URL`, or build a registry with
/// [`RedisConfig`](crate::store::RedisConfig). See the README's "Sharing limits across
/// processes and machines".
#[cfg(feature = "redis")]
pub mod redis {
    pub use crate::store::{
        OnFailure, RedisConfig, DEFAULT_FALLBACK_SHARE, DEFAULT_LEASE, DEFAULT_REDIS_PREFIX,
        DEFAULT_REDIS_TIMEOUT, REDIS_CLUSTER_VAR, REDIS_FALLBACK_SHARE_VAR, REDIS_LEASE_MS_VAR,
        REDIS_ON_FAILURE_VAR, REDIS_PREFIX_VAR, REDIS_TIMEOUT_MS_VAR,
    };
}

#[cfg(feature = "planner")]
#[doc(inline)]
pub use crate::planner;
