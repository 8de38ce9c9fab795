//! Built-in, dated tier tables: the default limits of each limit family per usage tier.
//!
//! Providers change limits without notice and the published numbers drift by model generation,
//! so every entry carries the [`TierSource`] it was taken from and that source's date. Treat
//! them as defaults: `RATE_LIMITED_<FAMILY>_<DIM>` overrides any of them (see the `config`
//! module), and the limits shown on your provider's account page are the truth.
//!
//! What is covered:
//! - **OpenAI**: tiers `free` and `tier-1` .. `tier-5` for `gpt-4o`, `gpt-4o-mini`, `gpt-4.1`,
//!   `gpt-4.1-mini`, `gpt-4.1-nano`, `o1`, `o1-mini`, `o3`, `o3-mini`, `o4-mini`,
//!   `gpt-4-turbo`, `gpt-4`, `gpt-3.5-turbo`, `text-embedding-3-small`,
//!   `text-embedding-3-large` and `text-embedding-ada-002` (RPM, TPM, and RPD where published).
//!   A cell with no published value has no entry (for example `gpt-4.1` above tier 2), so the
//!   model needs an env override at that tier. OpenAI tier names are exactly `free`,
//!   `tier-1` .. `tier-5`.
//! - **Anthropic**: `tier-1` .. `tier-4` RPM / ITPM / OTPM for the Sonnet 4.x, Opus 4.x,
//!   Haiku 4.5 and Haiku 3.5/3 pools. Anthropic tier names are free-form (the 2026 names
//!   Start / Build / Scale have no published mapping to numbers yet, so they have no table).
//! - **Gemini**: no table. Google publishes per-model limits only inside AI Studio, so every
//!   Gemini model needs `RATE_LIMITED_<FAMILY>_RPM` / `_ITPM` (Gemini's TPM counts input tokens
//!   only) / `_RPD`.
//! - **Azure OpenAI**: no table. Quota is whatever TPM was allocated to the deployment; set
//!   `RATE_LIMITED_<DEPLOYMENT>_TPM` and the RPM is derived from it.

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod entry;

mod table;

pub use entry::{TierEntry, TierSource};

use table::ENTRIES;

use crate::model::provider::Provider;
use crate::units::error::Error;
use crate::units::quota::Quota;

/// The OpenAI usage tiers, the only tier names OpenAI accepts.
pub const OPENAI_TIERS: [&str; 6] = ["free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5"];

/// The Anthropic tiers that have a built-in table (other names are accepted but need env
/// overrides).
pub const ANTHROPIC_TIERS: [&str; 4] = ["tier-1", "tier-2", "tier-3", "tier-4"];

/// The tier names with built-in limits for `provider` (empty for Azure and Gemini).
///
/// For OpenAI these are also the only accepted names; other providers accept any tier name.
pub fn known_tiers(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::OpenAi => &OPENAI_TIERS,
        Provider::Anthropic => &ANTHROPIC_TIERS,
        Provider::Azure | Provider::Gemini => &[],
    }
}

/// Every built-in entry, all providers, grouped by provider and family.
pub fn entries() -> &'static [TierEntry] {
    ENTRIES
}

/// The family ids with at least one built-in entry for `provider`, in table order.
pub fn known_families(provider: Provider) -> Vec<&'static str> {
    let mut families: Vec<&'static str> = Vec::new();
    for entry in ENTRIES.iter().filter(|e| e.provider == provider) {
        if !families.contains(&entry.family) {
            families.push(entry.family);
        }
    }
    families
}

/// The tiers at which `family_id` of `provider` has a built-in entry, in table order.
pub fn tiers_of(provider: Provider, family_id: &str) -> Vec<&'static str> {
    ENTRIES
        .iter()
        .filter(|e| e.provider == provider && e.family == family_id)
        .map(|e| e.tier)
        .collect()
}

/// The built-in entry for a family at a tier, if any.
pub fn builtin_entry(
    provider: Provider,
    tier: &str,
    family_id: &str,
) -> Option<&'static TierEntry> {
    let tier = tier.trim();
    ENTRIES.iter().find(|e| {
        e.provider == provider && e.family == family_id && e.tier.eq_ignore_ascii_case(tier)
    })
}

/// The built-in limits of `family_id` of `provider` at `tier` (headroom 1.0), and their source.
///
/// `None` if the table has no such entry (always for Azure and Gemini).
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{config::Provider, tiers::builtin_quota};
/// let (quota, source) = builtin_quota(Provider::OpenAi, "tier-1", "gpt-4o-mini").unwrap();
/// assert_eq!((quota.rpm, quota.tpm, quota.rpd), (Some(500), Some(200_000), Some(10_000)));
/// assert_eq!(source.source_date, "2025-09");
/// ```
pub fn builtin_quota(
    provider: Provider,
    tier: &str,
    family_id: &str,
) -> Option<(Quota, &'static TierSource)> {
    builtin_entry(provider, tier, family_id).map(|e| (e.quota(), e.source))
}

/// Validates a tier name for `provider` and returns it normalized (trimmed, lower case).
///
/// OpenAI accepts exactly `free` and `tier-1` .. `tier-5` (case-insensitive). Other providers
/// accept any name made of ASCII letters, digits, `-`, `_` and `.` (Anthropic's 2026 tiers are
/// called Start / Build / Scale).
///
/// # Errors
/// [`Error::Config`] naming `variable`, the value and the accepted names.
pub fn validate_tier(provider: Provider, variable: &str, value: &str) -> Result<String, Error> {
    let tier = value.trim().to_ascii_lowercase();
    match provider {
        Provider::OpenAi => {
            if OPENAI_TIERS.contains(&tier.as_str()) {
                Ok(tier)
            } else {
                Err(Error::config(
                    variable,
                    value,
                    format!(
                        "an OpenAI usage tier: one of {} (to give OpenAI a tier of its own, set \
                         RATE_LIMITED_OPENAI_TIER)",
                        OPENAI_TIERS.join(", ")
                    ),
                ))
            }
        }
        Provider::Azure | Provider::Anthropic | Provider::Gemini => {
            let valid = !tier.is_empty()
                && tier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if valid {
                Ok(tier)
            } else {
                let known = known_tiers(provider);
                let builtin = if known.is_empty() {
                    String::new()
                } else {
                    format!(" (built-in tables exist for {})", known.join(", "))
                };
                Err(Error::config(
                    variable,
                    value,
                    format!(
                        "a {provider} tier name of ASCII letters, digits, '-', '_' or '.'{builtin}"
                    ),
                ))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(provider: Provider, tier: &str, family: &str) -> Quota {
        builtin_quota(provider, tier, family)
            .unwrap_or_else(|| panic!("no entry for {provider} {tier} {family}"))
            .0
    }

    #[test]
    fn openai_lookups() {
        let q = quota(Provider::OpenAi, "tier-1", "gpt-4o-mini");
        assert_eq!(
            (q.rpm, q.tpm, q.rpd),
            (Some(500), Some(200_000), Some(10_000))
        );
        assert_eq!(q.headroom, 1.0);
        let q = quota(Provider::OpenAi, "tier-5", "gpt-4o");
        assert_eq!(
            (q.rpm, q.tpm, q.rpd),
            (Some(10_000), Some(30_000_000), None)
        );
        let q = quota(Provider::OpenAi, "free", "gpt-3.5-turbo");
        assert_eq!((q.rpm, q.tpm, q.rpd), (Some(3), Some(40_000), Some(200)));
        let q = quota(Provider::OpenAi, "tier-1", "gpt-4");
        assert_eq!(
            (q.rpm, q.tpm, q.rpd),
            (Some(500), Some(10_000), Some(10_000))
        );
        let q = quota(Provider::OpenAi, "tier-3", "gpt-4-turbo");
        assert_eq!((q.rpm, q.tpm), (Some(5_000), Some(600_000)));
        let q = quota(Provider::OpenAi, "tier-5", "o4-mini");
        assert_eq!((q.rpm, q.tpm), (Some(30_000), Some(150_000_000)));
        let q = quota(Provider::OpenAi, "TIER-2", "text-embedding-3-large");
        assert_eq!((q.rpm, q.tpm), (Some(5_000), Some(1_000_000)));
        assert_eq!(q.itpm, None);
    }

    #[test]
    fn anthropic_lookups() {
        let q = quota(Provider::Anthropic, "tier-1", "claude-sonnet-4");
        assert_eq!(
            (q.rpm, q.itpm, q.otpm),
            (Some(50), Some(30_000), Some(8_000))
        );
        assert_eq!(q.tpm, None);
        let q = quota(Provider::Anthropic, "tier-4", "claude-haiku-4-5");
        assert_eq!(
            (q.rpm, q.itpm, q.otpm),
            (Some(4_000), Some(4_000_000), Some(800_000))
        );
        let q = quota(Provider::Anthropic, "tier-2", "claude-haiku-3");
        assert_eq!(
            (q.rpm, q.itpm, q.otpm),
            (Some(1_000), Some(100_000), Some(20_000))
        );
    }

    #[test]
    fn missing_entries() {
        assert!(builtin_quota(Provider::OpenAi, "tier-3", "gpt-4.1").is_none());
        assert!(builtin_quota(Provider::OpenAi, "free", "gpt-4o").is_none());
        assert!(builtin_quota(Provider::OpenAi, "tier-1", "gpt-5-nano").is_none());
        assert!(builtin_quota(Provider::Anthropic, "build", "claude-sonnet-4").is_none());
        assert!(builtin_quota(Provider::Gemini, "tier-1", "gemini-2.5-flash").is_none());
        assert!(builtin_quota(Provider::Azure, "tier-1", "gpt-4o").is_none());
    }

    #[test]
    fn every_entry_is_dated_sourced_and_unique() {
        for (i, e) in ENTRIES.iter().enumerate() {
            let date = e.source.source_date;
            assert!(
                date.len() == 7 && date.as_bytes()[4] == b'-' && date.starts_with("20"),
                "{date}"
            );
            assert!(!e.source.source.is_empty());
            assert!(known_tiers(e.provider).contains(&e.tier), "{}", e.tier);
            assert!(e.rpm.is_some(), "{} {}", e.family, e.tier);
            assert!(
                ENTRIES[..i]
                    .iter()
                    .all(|o| (o.provider, o.tier, o.family) != (e.provider, e.tier, e.family)),
                "duplicate {} {}",
                e.family,
                e.tier
            );
            // Every family id must be what LimitFamily::of produces for it.
            assert_eq!(
                crate::model::limit_family::LimitFamily::of(e.provider, e.family).id,
                e.family
            );
        }
    }

    #[test]
    fn assumed_values_are_flagged() {
        let (_, source) = builtin_quota(Provider::OpenAi, "tier-1", "o3").unwrap();
        assert!(source.assumed);
        assert!(source.source.contains("assumed"));
        let (_, source) = builtin_quota(Provider::OpenAi, "tier-2", "gpt-4.1").unwrap();
        assert!(source.assumed);
        let (_, source) = builtin_quota(Provider::OpenAi, "tier-1", "gpt-4o").unwrap();
        assert!(!source.assumed);
        assert_eq!(source.source_date, "2025-09");
    }

    #[test]
    fn tier_lists() {
        assert_eq!(known_tiers(Provider::OpenAi).len(), 6);
        assert_eq!(known_tiers(Provider::Anthropic), &ANTHROPIC_TIERS);
        assert!(known_tiers(Provider::Gemini).is_empty());
        assert!(known_tiers(Provider::Azure).is_empty());
        assert_eq!(
            known_families(Provider::Anthropic),
            [
                "claude-sonnet-4",
                "claude-opus-4",
                "claude-haiku-4-5",
                "claude-haiku-3"
            ]
        );
        assert_eq!(known_families(Provider::OpenAi).len(), 16);
        assert_eq!(tiers_of(Provider::OpenAi, "gpt-4.1"), ["tier-1", "tier-2"]);
        assert_eq!(entries().len(), ENTRIES.len());
    }

    #[test]
    fn tier_validation() {
        assert_eq!(
            validate_tier(Provider::OpenAi, "tier", " Tier-3 ").unwrap(),
            "tier-3"
        );
        assert_eq!(
            validate_tier(Provider::OpenAi, "tier", "free").unwrap(),
            "free"
        );
        for bad in ["tier-6", "tier1", "build", "", "3"] {
            match validate_tier(Provider::OpenAi, "RATE_LIMITED_OPENAI_TIER", bad) {
                Err(Error::Config {
                    variable,
                    value,
                    expected,
                }) => {
                    assert_eq!(variable, "RATE_LIMITED_OPENAI_TIER");
                    assert_eq!(value, bad);
                    assert!(expected.contains("free, tier-1, tier-2, tier-3, tier-4, tier-5"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            validate_tier(Provider::Anthropic, "tier", "Build").unwrap(),
            "build"
        );
        assert_eq!(
            validate_tier(Provider::Gemini, "tier", "tier-2").unwrap(),
            "tier-2"
        );
        match validate_tier(Provider::Anthropic, "RATE_LIMITED_TIER", "scale up!") {
            Err(Error::Config {
                variable,
                value,
                expected,
            }) => {
                assert_eq!(variable, "RATE_LIMITED_TIER");
                assert_eq!(value, "scale up!");
                assert!(
                    expected.contains("tier-1, tier-2, tier-3, tier-4"),
                    "{expected}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(validate_tier(Provider::Azure, "tier", "  ").is_err());
    }
}
