//! Routing on the state the fleet shares: a deployment whose limiter lives in Redis cannot
//! forecast from this process alone, so the pool asks Redis (one `peek` round trip each,
//! nothing reserved) when it would admit the call, and for a tenant when its cap there has
//! room.

use super::route::Candidate;
use super::{Deployment, Pool};
use crate::limiter::Forecast;
use crate::units::cost::Cost;
use crate::units::error::{Error, Refusal};
use crate::units::tenant::Tenant;

impl Pool {
    /// Dates each candidate whose limiter lives in a shared store from the shared state; the
    /// one the head committed to keeps `committed`, its forecast when it was chosen. A
    /// deployment the store says the cost never fits moves to `refusals`.
    pub(super) async fn date_shared(
        &self,
        candidates: &mut Vec<Candidate>,
        refusals: &mut Vec<Refusal>,
        cost_of: &(dyn Fn(&Deployment) -> Cost + Sync),
        committed: Option<(usize, Forecast)>,
        tenant: Option<&Tenant>,
    ) {
        let mut k = 0;
        while k < candidates.len() {
            let candidate = &mut candidates[k];
            if !matches!(candidate.forecast, Forecast::Unknown { .. }) {
                k += 1;
                continue;
            }
            if let Some((_, forecast)) = committed.filter(|(i, _)| *i == candidate.index) {
                candidate.forecast = forecast;
                k += 1;
                continue;
            }
            let deployment = &self.shared.deployments[candidate.index];
            let forecast = deployment
                .limiter
                .forecast_shared_of(&cost_of(deployment), tenant)
                .await;
            if let Forecast::TooLarge {
                dimension,
                requested,
                capacity,
            } = forecast
            {
                refusals.push(Refusal {
                    deployment: deployment.name().to_owned(),
                    reason: Error::RequestTooLarge {
                        dimension,
                        requested,
                        capacity,
                    },
                });
                candidates.remove(k);
                continue;
            }
            candidates[k].forecast = forecast;
            k += 1;
        }
    }
}
