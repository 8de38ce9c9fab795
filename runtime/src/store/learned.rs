//! What a shared family's processes learn from their servers, kept in Redis beside the
//! buckets: the limits a server reported and the charge correction, read back by every process.
//!
//! What is read back is checked before any process adopts it: anyone with access to the Redis
//! can write there (another version, another application with the same prefix, an operator).
//! A limit must be a whole number greater than 0 and within [`LEARNED_LIMIT_RANGE`] times the
//! configured limit either way, and a correction a finite number; anything else is skipped
//! (logged once), and reading it is never a Redis failure. A process whose own server reports
//! a limit beyond the range still learns it from its own headers: only the shortcut through
//! Redis is bounded, so one bad value cannot set the whole fleet's limits for a day.

use std::time::Duration;

use super::family::SharedFamily;
use crate::limiter::gcra::BUCKETS;
use crate::sync::Locked;
use crate::units::cost::Dimension;

/// How long a limit learned from a server stays shared after it was last reported.
const LEARNED_LIMITS_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A shared limit more than this many times below or above the configured one is not
/// adopted from Redis (providers' adjacent usage tiers differ by less).
pub(crate) const LEARNED_LIMIT_RANGE: u64 = 16;

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
    /// Whether a process saw the server count per window (its evidence, as it logged it).
    pub(crate) window: Option<String>,
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

    /// Shares that the server counts per window (learned from its answers), for the family's
    /// other processes to follow too.
    pub(crate) fn share_window(&self) {
        let key = format!("{}:window", self.tag());
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(&key)
            .arg("sliding")
            .arg("PX")
            .arg(LEARNED_LIMITS_TTL.as_millis() as u64)
            .ignore();
        self.send_pipeline(pipeline);
    }

    /// What the family's processes have shared so far (`None` while Redis is away).
    pub(crate) async fn learned(&self) -> Option<Learned> {
        let limits_key = format!("{}:limits", self.tag());
        let correction_key = format!("{}:correction", self.tag());
        let window_key = format!("{}:window", self.tag());
        let mut pipeline = redis::pipe();
        pipeline
            .hgetall(&limits_key)
            .get(&correction_key)
            .pttl(&correction_key)
            .get(&window_key);
        // Read as text: a malformed value is skipped below, not a failed call.
        type Read = (Vec<(String, String)>, Option<String>, i64, Option<String>);
        let (limits, factor, ttl_ms, window) = self.store().query::<Read>(&pipeline).await.ok()?;
        let mut skipped = Vec::new();
        let limits = limits
            .into_iter()
            .filter_map(|(suffix, value)| {
                let dimension = BUCKETS.into_iter().find(|d| d.env_suffix() == suffix)?;
                match self.valid_limit(dimension, &value) {
                    Ok(limit) => Some((dimension, limit)),
                    Err(why) => {
                        skipped.push(format!("{suffix} = {value:?} ({why})"));
                        None
                    }
                }
            })
            .collect();
        let factor = factor.and_then(|text| match text.trim().parse::<f64>() {
            Ok(factor) if factor.is_finite() => Some(factor),
            _ => {
                skipped.push(format!("correction = {text:?} (not a number)"));
                None
            }
        });
        let correction = factor.map(|factor| {
            let left = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
            (factor, CORRECTION_TTL.saturating_sub(left))
        });
        let window = window.filter(|text| {
            let known = text == "sliding";
            if !known {
                skipped.push(format!("window = {text:?} (not `sliding`)"));
            }
            known
        });
        self.report_skipped(skipped);
        Some(Learned {
            limits,
            correction,
            window,
        })
    }

    /// `value` as a limit on `dimension` that a process may adopt from Redis, or why not.
    fn valid_limit(&self, dimension: Dimension, value: &str) -> Result<u64, String> {
        let limit = value
            .trim()
            .parse::<u64>()
            .map_err(|_| "not a whole number".to_owned())?;
        if limit == 0 {
            return Err("not a limit".to_owned());
        }
        let anchor = self
            .inner
            .configured
            .limit(dimension)
            .or_else(|| self.current_quota().limit(dimension));
        let Some(anchor) = anchor else {
            return Ok(limit);
        };
        let (low, high) = (
            (anchor / LEARNED_LIMIT_RANGE).max(1),
            anchor.saturating_mul(LEARNED_LIMIT_RANGE),
        );
        if (low..=high).contains(&limit) {
            Ok(limit)
        } else {
            Err(format!(
                "outside {low}..={high}, {LEARNED_LIMIT_RANGE}x around the configured {anchor}"
            ))
        }
    }

    /// Logs what was skipped, once for as long as it stays the same.
    fn report_skipped(&self, skipped: Vec<String>) {
        let text = skipped.join(", ");
        let mut last = self.inner.rejected_learning.locked();
        if *last == text {
            return;
        }
        if !text.is_empty() {
            tracing::warn!(
                tag = %self.tag(),
                skipped = %text,
                "values shared in Redis that no process adopts"
            );
        }
        *last = text;
    }
}
