//! Limit values: positive integers with `_` separators, or `unlimited`.

use crate::units::cost::Dimension;
use crate::units::error::Error;

/// A non-negative integer with optional single `_` separators between digits.
pub(crate) fn parse_integer(value: &str) -> Option<u64> {
    let well_formed = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !value.starts_with('_')
        && !value.ends_with('_')
        && !value.contains("__");
    if !well_formed {
        return None;
    }
    value.replace('_', "").parse().ok()
}

/// Parses the value of `RATE_LIMITED_<FAMILY>_<DIM>`: a positive integer (with optional `_`
/// digit separators) or `unlimited` (case-insensitive), which returns `Ok(None)`.
///
/// # Errors
/// [`Error::Config`] naming `variable`, the value and what is accepted.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{config::parse_limit, limiter::Dimension};
/// let tpm = Dimension::TokensPerMinute;
/// assert_eq!(parse_limit("X_TPM", "200_000", tpm).unwrap(), Some(200_000));
/// assert_eq!(parse_limit("X_TPM", "unlimited", tpm).unwrap(), None);
/// assert!(parse_limit("X_TPM", "200k", tpm).is_err());
/// ```
pub fn parse_limit(
    variable: &str,
    value: &str,
    dimension: Dimension,
) -> Result<Option<u64>, Error> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let max = match dimension {
        Dimension::Concurrency => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    match parse_integer(trimmed) {
        Some(n) if n > 0 && n <= max => Ok(Some(n)),
        _ => {
            let unit = match dimension {
                Dimension::MinInterval => "milliseconds between two request starts".to_owned(),
                Dimension::Concurrency => format!("{dimension}, at most {max},"),
                other => other.to_string(),
            };
            Err(Error::config(
                variable,
                value,
                format!(
                    "a positive whole number of {unit} (`_` digit separators allowed, e.g. \
                     200_000), or `unlimited` to remove the limit"
                ),
            ))
        }
    }
}
