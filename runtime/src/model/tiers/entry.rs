//! One row of a tier table, and the dated source it was taken from.

use crate::model::provider::Provider;
use crate::units::quota::Quota;

/// Where a built-in limit comes from, and when it was observed.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TierSource {
    /// The document, page or observation the numbers were taken from.
    pub source: &'static str,
    /// When the source was written or observed, `YYYY-MM`.
    pub source_date: &'static str,
    /// True if at least one number of the entry is not published anywhere and was assumed
    /// from a sibling model or tier; the source text says which.
    pub assumed: bool,
}

/// One built-in row: the limits of one limit family at one tier.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TierEntry {
    /// The provider.
    pub provider: Provider,
    /// The tier name, lower case (`free`, `tier-1`, ..).
    pub tier: &'static str,
    /// The limit family id (see [`LimitFamily`](crate::config::LimitFamily)).
    pub family: &'static str,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Input plus output tokens per minute.
    pub tpm: Option<u64>,
    /// Input tokens per minute.
    pub itpm: Option<u64>,
    /// Output tokens per minute.
    pub otpm: Option<u64>,
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Where these numbers come from.
    pub source: &'static TierSource,
}

impl TierEntry {
    /// The entry as a [`Quota`], headroom 1.0.
    pub fn quota(&self) -> Quota {
        Quota {
            rpm: self.rpm,
            tpm: self.tpm,
            itpm: self.itpm,
            otpm: self.otpm,
            rpd: self.rpd,
            ..Quota::default()
        }
    }
}
