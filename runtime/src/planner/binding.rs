//! What held a planned run back.

use std::fmt;

use crate::units::cost::Dimension;

/// What set the pace of a planned run at some moment.
///
/// While a request waits at the head of the limiter's queue, the binding is the limit that
/// keeps it out longest. While nobody waits there, the client itself is the bottleneck: every
/// worker is busy with a request in flight, so the number of workers and the latency set the
/// pace ([`Binding::Workers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Binding {
    /// A limit of the quota.
    Limit(Dimension),
    /// No limit held a request back: more workers (or lower latency) would go faster.
    Workers,
}

impl Binding {
    /// Every binding, in the order of [`Dimension::ALL`] then [`Binding::Workers`].
    pub(crate) const COUNT: usize = Dimension::ALL.len() + 1;

    /// A dense index in `0..COUNT`, for tallies.
    pub(crate) fn index(self) -> usize {
        match self {
            Binding::Limit(dimension) => Dimension::ALL
                .iter()
                .position(|d| *d == dimension)
                .expect("ALL lists every dimension"),
            Binding::Workers => Dimension::ALL.len(),
        }
    }

    /// The binding at `index` (the inverse of [`Binding::index`]).
    pub(crate) fn from_index(index: usize) -> Binding {
        Dimension::ALL
            .get(index)
            .map_or(Binding::Workers, |d| Binding::Limit(*d))
    }
}

impl fmt::Display for Binding {
    /// The short name a table shows: `RPM`, `TPM`, `CONCURRENCY`, .. or `workers`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Limit(dimension) => f.write_str(dimension.env_suffix()),
            Binding::Workers => f.write_str("workers"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip() {
        for index in 0..Binding::COUNT {
            assert_eq!(Binding::from_index(index).index(), index);
        }
        assert_eq!(Binding::Workers.to_string(), "workers");
        assert_eq!(
            Binding::Limit(Dimension::TokensPerMinute).to_string(),
            "TPM"
        );
    }
}
