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

use crate::error::Error;
use crate::provider::Provider;
use crate::quota::Quota;

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
    /// The limit family id (see [`LimitFamily`](crate::LimitFamily)).
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
/// use ratelimited_runtime::{config::Provider, tiers::builtin_quota};
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

/// Table A of the reference: OpenAI's own rate-limit guide.
static OPENAI_GUIDE_2024: TierSource = TierSource {
    source: "OpenAI rate-limit guide tier tables (openai-cookbook \
             examples/data/oai_docs/tier-{free,one,..,five}.txt), mid-2024: after gpt-4o's \
             launch, before gpt-4o-mini's",
    source_date: "2024-06",
    assumed: false,
};

/// Table B rows whose numbers come from ai-buzz.com and forum threads (2024-10 .. 2025-09).
static OPENAI_LATER_2025: TierSource = TierSource {
    source: "ai-buzz.com OpenAI rate-limit guide, OpenAI community forum threads 1028595 and \
             1269349, and a Sept 2025 tier-1 account dump (LazyTechGeek/HomeAssistant-Voice)",
    source_date: "2025-09",
    assumed: false,
};

/// Table B rows seen only in the Sept 2025 tier-1 account dump.
static OPENAI_DUMP_2025: TierSource = TierSource {
    source: "Sept 2025 tier-1 account limits dump (LazyTechGeek/HomeAssistant-Voice README)",
    source_date: "2025-09",
    assumed: false,
};

/// gpt-4.1 tier 2: TPM is published, RPM is not.
static OPENAI_GPT41_TIER2: TierSource = TierSource {
    source: "TPM 450k from OpenAI community forum thread 1371479; RPM not published, assumed \
             5,000 like every other model's tier-2 row",
    source_date: "2025-09",
    assumed: true,
};

/// o3: listed as a shared group in the Sept 2025 dump, with no figures anywhere.
static OPENAI_O3_ASSUMED: TierSource = TierSource {
    source: "assumed equal to o1 (ai-buzz.com, forum 1028595): the reference lists o3 as a \
             shared limit group (Sept 2025 tier-1 dump) but publishes no numbers for it",
    source_date: "2025-09",
    assumed: true,
};

/// The Anthropic table of the reference.
static ANTHROPIC_DOCS: TierSource = TierSource {
    source: "Anthropic rate-limit docs (platform.claude.com/docs/en/api/rate-limits); the \
             table already lists Claude Haiku 4.5 (released 2025-10), its exact date is not given",
    source_date: "2025-10",
    assumed: false,
};

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// An OpenAI row: RPM / TPM (/ RPD).
const fn oa(
    tier: &'static str,
    family: &'static str,
    rpm: u64,
    tpm: u64,
    rpd: Option<u64>,
    source: &'static TierSource,
) -> TierEntry {
    TierEntry {
        provider: Provider::OpenAi,
        tier,
        family,
        rpm: Some(rpm),
        tpm: Some(tpm),
        itpm: None,
        otpm: None,
        rpd,
        source,
    }
}

/// An Anthropic row: RPM / ITPM / OTPM.
const fn an(tier: &'static str, family: &'static str, rpm: u64, itpm: u64, otpm: u64) -> TierEntry {
    TierEntry {
        provider: Provider::Anthropic,
        tier,
        family,
        rpm: Some(rpm),
        tpm: None,
        itpm: Some(itpm),
        otpm: Some(otpm),
        rpd: None,
        source: &ANTHROPIC_DOCS,
    }
}

const K: u64 = 1_000;
const M: u64 = 1_000_000;

// Rule: Table B (later, 2024-10 .. 2025-09) where it has a value, Table A (mid-2024) otherwise.
// "–" cells (not offered at that tier, or not published) have no entry.
static ENTRIES: &[TierEntry] = &[
    // gpt-4o: tier 1-2 agree in both tables; tier 3-5 from Table B.
    oa("tier-1", "gpt-4o", 500, 30 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "gpt-4o", 5 * K, 450 * K, None, &OPENAI_LATER_2025),
    oa("tier-3", "gpt-4o", 5 * K, 800 * K, None, &OPENAI_LATER_2025),
    oa("tier-4", "gpt-4o", 10 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "gpt-4o", 10 * K, 30 * M, None, &OPENAI_LATER_2025),
    // gpt-4o-mini (incl. audio/search previews, fine-tunes): Table B.
    oa(
        "free",
        "gpt-4o-mini",
        3,
        40 * K,
        Some(200),
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-1",
        "gpt-4o-mini",
        500,
        200 * K,
        Some(10 * K),
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-2",
        "gpt-4o-mini",
        5 * K,
        2 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-3",
        "gpt-4o-mini",
        5 * K,
        4 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-4",
        "gpt-4o-mini",
        10 * K,
        10 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-5",
        "gpt-4o-mini",
        30 * K,
        150 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    // gpt-4.1: tier 1 from the dump; tier 2 TPM published, RPM assumed; tiers 3-5 unverified
    // (no entry). The long-context bucket (>128k input: 100 RPM / 200k TPM) is not modelled.
    oa("tier-1", "gpt-4.1", 500, 30 * K, None, &OPENAI_DUMP_2025),
    oa(
        "tier-2",
        "gpt-4.1",
        5 * K,
        450 * K,
        None,
        &OPENAI_GPT41_TIER2,
    ),
    // gpt-4.1-mini / -nano: tier 1 only (long context 200 / 400k not modelled).
    oa(
        "tier-1",
        "gpt-4.1-mini",
        500,
        200 * K,
        None,
        &OPENAI_DUMP_2025,
    ),
    oa(
        "tier-1",
        "gpt-4.1-nano",
        500,
        200 * K,
        None,
        &OPENAI_DUMP_2025,
    ),
    // o1 (and o1-preview).
    oa("tier-1", "o1", 500, 30 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o1", 5 * K, 450 * K, None, &OPENAI_LATER_2025),
    oa("tier-3", "o1", 5 * K, 800 * K, None, &OPENAI_LATER_2025),
    oa("tier-4", "o1", 10 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "o1", 10 * K, 30 * M, None, &OPENAI_LATER_2025),
    // o3: ASSUMED. No source gives o3 figures; these are o1's row (same class of model).
    oa("tier-1", "o3", 500, 30 * K, None, &OPENAI_O3_ASSUMED),
    oa("tier-2", "o3", 5 * K, 450 * K, None, &OPENAI_O3_ASSUMED),
    oa("tier-3", "o3", 5 * K, 800 * K, None, &OPENAI_O3_ASSUMED),
    oa("tier-4", "o3", 10 * K, 2 * M, None, &OPENAI_O3_ASSUMED),
    oa("tier-5", "o3", 10 * K, 30 * M, None, &OPENAI_O3_ASSUMED),
    // o1-mini, o3-mini, o4-mini: tier 1 from the Sept 2025 dump, tiers 2-5 from ai-buzz's o1-mini
    // row. (ai-buzz also lists o3-mini tier 1 as 500 / 30k; the newer dump's 200k is used.)
    oa("tier-1", "o1-mini", 500, 200 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o1-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "o1-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa(
        "tier-4",
        "o1-mini",
        10 * K,
        10 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-5",
        "o1-mini",
        30 * K,
        150 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa("tier-1", "o3-mini", 500, 200 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o3-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "o3-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa(
        "tier-4",
        "o3-mini",
        10 * K,
        10 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-5",
        "o3-mini",
        30 * K,
        150 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa("tier-1", "o4-mini", 500, 200 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o4-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "o4-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa(
        "tier-4",
        "o4-mini",
        10 * K,
        10 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    oa(
        "tier-5",
        "o4-mini",
        30 * K,
        150 * M,
        None,
        &OPENAI_LATER_2025,
    ),
    // gpt-4-turbo (incl. previews): Table A only.
    oa(
        "tier-1",
        "gpt-4-turbo",
        500,
        30 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-2",
        "gpt-4-turbo",
        5 * K,
        450 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-3",
        "gpt-4-turbo",
        5 * K,
        600 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-4",
        "gpt-4-turbo",
        10 * K,
        800 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-5",
        "gpt-4-turbo",
        10 * K,
        2 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    // gpt-4: Table A only.
    oa(
        "tier-1",
        "gpt-4",
        500,
        10 * K,
        Some(10 * K),
        &OPENAI_GUIDE_2024,
    ),
    oa("tier-2", "gpt-4", 5 * K, 40 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "gpt-4", 5 * K, 80 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "gpt-4", 10 * K, 300 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "gpt-4", 10 * K, 300 * K, None, &OPENAI_GUIDE_2024),
    // gpt-3.5-turbo: tier 1 from the Sept 2025 dump (which gives no RPD, so Table A's 10k RPD
    // is not carried over); the rest from Table A. Note the mid-2024 tier-2 TPM (80k) is below
    // the 2025 tier-1 TPM (200k): the older figure is kept as a conservative default.
    oa(
        "free",
        "gpt-3.5-turbo",
        3,
        40 * K,
        Some(200),
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-1",
        "gpt-3.5-turbo",
        500,
        200 * K,
        None,
        &OPENAI_DUMP_2025,
    ),
    oa(
        "tier-2",
        "gpt-3.5-turbo",
        3_500,
        80 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-3",
        "gpt-3.5-turbo",
        3_500,
        160 * K,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-4",
        "gpt-3.5-turbo",
        10 * K,
        M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-5",
        "gpt-3.5-turbo",
        10 * K,
        2 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    // Embeddings: tier 1 of text-embedding-3-* confirmed by the dump, the rest Table A.
    oa(
        "free",
        "text-embedding-3-small",
        3 * K,
        M,
        Some(200),
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-1",
        "text-embedding-3-small",
        3 * K,
        M,
        None,
        &OPENAI_DUMP_2025,
    ),
    oa(
        "tier-2",
        "text-embedding-3-small",
        5 * K,
        M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-3",
        "text-embedding-3-small",
        5 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-4",
        "text-embedding-3-small",
        10 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-5",
        "text-embedding-3-small",
        10 * K,
        10 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "free",
        "text-embedding-3-large",
        3 * K,
        M,
        Some(200),
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-1",
        "text-embedding-3-large",
        3 * K,
        M,
        None,
        &OPENAI_DUMP_2025,
    ),
    oa(
        "tier-2",
        "text-embedding-3-large",
        5 * K,
        M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-3",
        "text-embedding-3-large",
        5 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-4",
        "text-embedding-3-large",
        10 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-5",
        "text-embedding-3-large",
        10 * K,
        10 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "free",
        "text-embedding-ada-002",
        3 * K,
        M,
        Some(200),
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-1",
        "text-embedding-ada-002",
        3 * K,
        M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-2",
        "text-embedding-ada-002",
        5 * K,
        M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-3",
        "text-embedding-ada-002",
        5 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-4",
        "text-embedding-ada-002",
        10 * K,
        5 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    oa(
        "tier-5",
        "text-embedding-ada-002",
        10 * K,
        10 * M,
        None,
        &OPENAI_GUIDE_2024,
    ),
    // Anthropic: RPM / ITPM / OTPM. Sonnet 4.x and Opus 4.x are pools shared across versions.
    an("tier-1", "claude-sonnet-4", 50, 30 * K, 8 * K),
    an("tier-2", "claude-sonnet-4", 1_000, 450 * K, 90 * K),
    an("tier-3", "claude-sonnet-4", 2_000, 800 * K, 160 * K),
    an("tier-4", "claude-sonnet-4", 4_000, 2 * M, 400 * K),
    an("tier-1", "claude-opus-4", 50, 30 * K, 8 * K),
    an("tier-2", "claude-opus-4", 1_000, 450 * K, 90 * K),
    an("tier-3", "claude-opus-4", 2_000, 800 * K, 160 * K),
    an("tier-4", "claude-opus-4", 4_000, 2 * M, 400 * K),
    an("tier-1", "claude-haiku-4-5", 50, 50 * K, 10 * K),
    an("tier-2", "claude-haiku-4-5", 1_000, 450 * K, 90 * K),
    an("tier-3", "claude-haiku-4-5", 2_000, M, 200 * K),
    an("tier-4", "claude-haiku-4-5", 4_000, 4 * M, 800 * K),
    // Haiku 3.5 / 3 (their ITPM also counts cache reads).
    an("tier-1", "claude-haiku-3", 50, 50 * K, 10 * K),
    an("tier-2", "claude-haiku-3", 1_000, 100 * K, 20 * K),
    an("tier-3", "claude-haiku-3", 2_000, 200 * K, 40 * K),
    an("tier-4", "claude-haiku-3", 4_000, 400 * K, 80 * K),
];

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
                crate::config::LimitFamily::of(e.provider, e.family).id,
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
