//! The built-in rows, one per line: provider, tier, family, limits, source.

use super::entry::{TierEntry, TierSource};
use crate::model::provider::Provider;

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
#[rustfmt::skip]
pub(super) static ENTRIES: &[TierEntry] = &[
    // gpt-4o: tier 1-2 agree in both tables; tier 3-5 from Table B.
    oa("tier-1", "gpt-4o", 500, 30 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "gpt-4o", 5 * K, 450 * K, None, &OPENAI_LATER_2025),
    oa("tier-3", "gpt-4o", 5 * K, 800 * K, None, &OPENAI_LATER_2025),
    oa("tier-4", "gpt-4o", 10 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "gpt-4o", 10 * K, 30 * M, None, &OPENAI_LATER_2025),
    // gpt-4o-mini (incl. audio/search previews, fine-tunes): Table B.
    oa("free", "gpt-4o-mini", 3, 40 * K, Some(200), &OPENAI_LATER_2025),
    oa("tier-1", "gpt-4o-mini", 500, 200 * K, Some(10 * K), &OPENAI_LATER_2025),
    oa("tier-2", "gpt-4o-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "gpt-4o-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa("tier-4", "gpt-4o-mini", 10 * K, 10 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "gpt-4o-mini", 30 * K, 150 * M, None, &OPENAI_LATER_2025),
    // gpt-4.1: tier 1 from the dump; tier 2 TPM published, RPM assumed; tiers 3-5 unverified
    // (no entry). The long-context bucket (>128k input: 100 RPM / 200k TPM) is not modelled.
    oa("tier-1", "gpt-4.1", 500, 30 * K, None, &OPENAI_DUMP_2025),
    oa("tier-2", "gpt-4.1", 5 * K, 450 * K, None, &OPENAI_GPT41_TIER2),
    // gpt-4.1-mini / -nano: tier 1 only (long context 200 / 400k not modelled).
    oa("tier-1", "gpt-4.1-mini", 500, 200 * K, None, &OPENAI_DUMP_2025),
    oa("tier-1", "gpt-4.1-nano", 500, 200 * K, None, &OPENAI_DUMP_2025),
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
    oa("tier-4", "o1-mini", 10 * K, 10 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "o1-mini", 30 * K, 150 * M, None, &OPENAI_LATER_2025),
    oa("tier-1", "o3-mini", 500, 200 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o3-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "o3-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa("tier-4", "o3-mini", 10 * K, 10 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "o3-mini", 30 * K, 150 * M, None, &OPENAI_LATER_2025),
    oa("tier-1", "o4-mini", 500, 200 * K, None, &OPENAI_LATER_2025),
    oa("tier-2", "o4-mini", 5 * K, 2 * M, None, &OPENAI_LATER_2025),
    oa("tier-3", "o4-mini", 5 * K, 4 * M, None, &OPENAI_LATER_2025),
    oa("tier-4", "o4-mini", 10 * K, 10 * M, None, &OPENAI_LATER_2025),
    oa("tier-5", "o4-mini", 30 * K, 150 * M, None, &OPENAI_LATER_2025),
    // gpt-4-turbo (incl. previews): Table A only.
    oa("tier-1", "gpt-4-turbo", 500, 30 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-2", "gpt-4-turbo", 5 * K, 450 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "gpt-4-turbo", 5 * K, 600 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "gpt-4-turbo", 10 * K, 800 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "gpt-4-turbo", 10 * K, 2 * M, None, &OPENAI_GUIDE_2024),
    // gpt-4: Table A only.
    oa("tier-1", "gpt-4", 500, 10 * K, Some(10 * K), &OPENAI_GUIDE_2024),
    oa("tier-2", "gpt-4", 5 * K, 40 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "gpt-4", 5 * K, 80 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "gpt-4", 10 * K, 300 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "gpt-4", 10 * K, 300 * K, None, &OPENAI_GUIDE_2024),
    // gpt-3.5-turbo: tier 1 from the Sept 2025 dump (which gives no RPD, so Table A's 10k RPD
    // is not carried over); the rest from Table A. Note the mid-2024 tier-2 TPM (80k) is below
    // the 2025 tier-1 TPM (200k): the older figure is kept as a conservative default.
    oa("free", "gpt-3.5-turbo", 3, 40 * K, Some(200), &OPENAI_GUIDE_2024),
    oa("tier-1", "gpt-3.5-turbo", 500, 200 * K, None, &OPENAI_DUMP_2025),
    oa("tier-2", "gpt-3.5-turbo", 3_500, 80 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "gpt-3.5-turbo", 3_500, 160 * K, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "gpt-3.5-turbo", 10 * K, M, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "gpt-3.5-turbo", 10 * K, 2 * M, None, &OPENAI_GUIDE_2024),
    // Embeddings: tier 1 of text-embedding-3-* confirmed by the dump, the rest Table A.
    oa("free", "text-embedding-3-small", 3 * K, M, Some(200), &OPENAI_GUIDE_2024),
    oa("tier-1", "text-embedding-3-small", 3 * K, M, None, &OPENAI_DUMP_2025),
    oa("tier-2", "text-embedding-3-small", 5 * K, M, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "text-embedding-3-small", 5 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "text-embedding-3-small", 10 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "text-embedding-3-small", 10 * K, 10 * M, None, &OPENAI_GUIDE_2024),
    oa("free", "text-embedding-3-large", 3 * K, M, Some(200), &OPENAI_GUIDE_2024),
    oa("tier-1", "text-embedding-3-large", 3 * K, M, None, &OPENAI_DUMP_2025),
    oa("tier-2", "text-embedding-3-large", 5 * K, M, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "text-embedding-3-large", 5 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "text-embedding-3-large", 10 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "text-embedding-3-large", 10 * K, 10 * M, None, &OPENAI_GUIDE_2024),
    oa("free", "text-embedding-ada-002", 3 * K, M, Some(200), &OPENAI_GUIDE_2024),
    oa("tier-1", "text-embedding-ada-002", 3 * K, M, None, &OPENAI_GUIDE_2024),
    oa("tier-2", "text-embedding-ada-002", 5 * K, M, None, &OPENAI_GUIDE_2024),
    oa("tier-3", "text-embedding-ada-002", 5 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-4", "text-embedding-ada-002", 10 * K, 5 * M, None, &OPENAI_GUIDE_2024),
    oa("tier-5", "text-embedding-ada-002", 10 * K, 10 * M, None, &OPENAI_GUIDE_2024),
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
