//! What a shared family's processes learn from their servers, kept in Redis beside the
//! buckets: the limits a server reported and the charge correction, read back by every process.

use std::time::Duration;

use super::family::SharedFamily;
use crate::limiter::gcra::BUCKETS;
use crate::units::cost::Dimension;

/// How long a limit learned from a server stays shared after it was last reported.
const LEARNED_LIMITS_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a shared charge correction is kept: ten of the correction's half-lives, when the
/// excess it carried has decayed below a thousandth (the feedback checks the relation).
pub(crate) const CORRECTION_TTL: Duration = Duration::from_secs(600);

/// What the family's processes learned from their servers, as kept in Redis.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Learned {
    /// Limits a server reported that differ from the configured ones.
    pub(crate) limits: Vec<(Dimension, u64)>,
    /// The charge correction factor, and how long ago it was shared (on the server's clock).
    pub(crate) correction: Option<(f64, Duration)>,
}

impl SharedFamily {
    /// Sends a pipeline without waiting for it (the shared learning).
    fn send_pipeline(&self, pipeline: redis::Pipeline) {
        let family = self.clone();
        super::spawn_detached(async move {
            let _ = family.store().query::<()>(&pipeline).await;
        });
    }

    /// Shares a limit this process adopted from its server's headers, for the family's other
    /// processes to adopt too.
    pub(crate) fn share_limit(&self, dimension: Dimension, limit: u64) {
        let key = format!("{}:limits", self.tag());
        let mut pipeline = redis::pipe();
        pipeline
            .hset(&key, dimension.env_suffix(), limit)
            .ignore()
            .pexpire(&key, LEARNED_LIMITS_TTL.as_millis() as i64)
            .ignore();
        self.send_pipeline(pipeline);
    }

    /// Shares this process's raised charge correction (the key's age is its age).
    pub(crate) fn share_correction(&self, factor: f64) {
        let key = format!("{}:correction", self.tag());
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(&key)
            .arg(factor.to_string())
            .arg("PX")
            .arg(CORRECTION_TTL.as_millis() as u64)
            .ignore();
        self.send_pipeline(pipeline);
    }

    /// What the family's processes have shared so far (`None` while Redis is away).
    pub(crate) async fn learned(&self) -> Option<Learned> {
        let limits_key = format!("{}:limits", self.tag());
        let correction_key = format!("{}:correction", self.tag());
        let mut pipeline = redis::pipe();
        pipeline
            .hgetall(&limits_key)
            .get(&correction_key)
            .pttl(&correction_key);
        let (limits, factor, ttl_ms) = self
            .store()
            .query::<(Vec<(String, u64)>, Option<f64>, i64)>(&pipeline)
            .await
            .ok()?;
        let limits = limits
            .into_iter()
            .filter_map(|(suffix, limit)| {
                let dimension = BUCKETS.into_iter().find(|d| d.env_suffix() == suffix)?;
                Some((dimension, limit))
            })
            .collect();
        let correction = factor.filter(|f| f.is_finite()).map(|factor| {
            let left = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
            (factor, CORRECTION_TTL.saturating_sub(left))
        });
        Some(Learned { limits, correction })
    }
}
