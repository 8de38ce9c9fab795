//! Providers, and every rule that differs by provider: which model names belong to it, how a
//! provider prefix is written, which tokenizer estimates its prompts, whether it refunds unused
//! output, what a request reserves by default, how Azure derives RPM, which model ids share a
//! limit family (OpenAI aliases, Claude pools), and which variables define a model it has no
//! table for. Adding a provider means a variant here, its arms in these matches, and its rows
//! in `tiers`; the generic date-snapshot stripping is in `family`.

use std::fmt;
use std::str::FromStr;

use crate::units::error::Error;

/// An LLM API provider whose limit rules the library knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// OpenAI (and OpenAI-compatible endpoints configured as `openai`).
    OpenAi,
    /// Azure OpenAI: the model string is the deployment name.
    Azure,
    /// Anthropic (Claude).
    Anthropic,
    /// Google Gemini API.
    Gemini,
}

/// The accepted provider names, as shown in error messages.
const ACCEPTED_PROVIDERS: &str = "one of openai, azure, anthropic, gemini (case-insensitive)";

impl Provider {
    /// The model names [`Provider::infer`] and [`Provider::split_prefix`] recognize, as error
    /// messages list them.
    pub const RECOGNIZED_NAMES: &'static str = "only gpt-*, chatgpt-*, o1/o3/o4*, \
        text-embedding-*, claude-* and gemini-* are recognized, or a provider prefix such as \
        `openai/`";

    /// Every provider, in the order they are listed in docs and errors.
    pub const ALL: [Provider; 4] = [
        Provider::OpenAi,
        Provider::Azure,
        Provider::Anthropic,
        Provider::Gemini,
    ];

    /// The lower-case name used in attributes and messages: `openai`, `azure`, `anthropic`,
    /// `gemini`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Azure => "azure",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }

    /// The name used in env vars such as `RATE_LIMITED_OPENAI_TIER`: `OPENAI`, `AZURE`,
    /// `ANTHROPIC`, `GEMINI`.
    pub const fn env_name(self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI",
            Provider::Azure => "AZURE",
            Provider::Anthropic => "ANTHROPIC",
            Provider::Gemini => "GEMINI",
        }
    }

    /// Parses a provider name, case-insensitively, ignoring surrounding whitespace.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable `provider`, the value and the accepted names.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::config::Provider;
    /// assert_eq!(Provider::parse("OpenAI").unwrap(), Provider::OpenAi);
    /// assert!(Provider::parse("mistral").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Provider, Error> {
        let wanted = value.trim();
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| Error::config("provider", value, ACCEPTED_PROVIDERS))
    }

    /// Infers the provider from a model id, or `None` if the name says nothing.
    ///
    /// `gpt-*`, `chatgpt-*`, `o1`/`o3`/`o4` and their variants (`o1-mini`, `o4-mini`, ..),
    /// `text-embedding-*` and fine-tunes of those (`ft:gpt-4o-mini-..:org::id`) are OpenAI;
    /// `claude-*` is Anthropic; `gemini-*` (also `models/gemini-*`) is Gemini. Azure is never
    /// inferred: a deployment name can be anything.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::config::Provider;
    /// assert_eq!(Provider::infer("o4-mini"), Some(Provider::OpenAi));
    /// assert_eq!(Provider::infer("claude-sonnet-4-5"), Some(Provider::Anthropic));
    /// assert_eq!(Provider::infer("llama-3.1-70b"), None);
    /// ```
    pub fn infer(model: &str) -> Option<Provider> {
        let model = model.trim().to_ascii_lowercase();
        if let Some(base) = model.strip_prefix("ft:") {
            let base = base.split(':').next().unwrap_or_default();
            return is_openai_name(base).then_some(Provider::OpenAi);
        }
        if is_openai_name(&model) {
            Some(Provider::OpenAi)
        } else if model.starts_with("claude-") {
            Some(Provider::Anthropic)
        } else if model.starts_with("gemini-") || model.starts_with("models/gemini-") {
            Some(Provider::Gemini)
        } else {
            None
        }
    }
}

/// True for the OpenAI model name patterns (lower-case input).
fn is_openai_name(model: &str) -> bool {
    let reasoning = ["o1", "o3", "o4"].iter().any(|prefix| {
        model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    });
    reasoning
        || model.starts_with("gpt-")
        || model.starts_with("chatgpt-")
        || model.starts_with("text-embedding-")
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;

    /// Same as [`Provider::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::parse(s)
    }
}

/// Provider-specific rules: everything the library knows about how one provider counts,
/// refunds and names things lives in this block, so adding a provider means extending these
/// matches (and the tier table in `tiers`).
impl Provider {
    /// Splits a provider prefix off a model id, the convention of LiteLLM and OpenRouter:
    /// `openai/gpt-4o-mini` → (`Some(OpenAi)`, `gpt-4o-mini`), `azure/my-deployment` →
    /// (`Some(Azure)`, `my-deployment`). An id whose first segment names no provider (`gpt-4o`,
    /// `models/gemini-2.5-pro`) is returned whole.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::config::Provider;
    /// assert_eq!(Provider::split_prefix("anthropic/claude-sonnet-4-5"), (Some(Provider::Anthropic), "claude-sonnet-4-5"));
    /// assert_eq!(Provider::split_prefix("gpt-4o"), (None, "gpt-4o"));
    /// ```
    pub fn split_prefix(model: &str) -> (Option<Provider>, &str) {
        let trimmed = model.trim();
        let Some((prefix, rest)) = trimmed.split_once('/') else {
            return (None, model);
        };
        match Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(prefix))
        {
            Some(provider) if !rest.trim().is_empty() => (Some(provider), rest),
            _ => (None, model),
        }
    }

    /// The limit family id of a lower-cased model id of this provider (see
    /// [`LimitFamily::of`]): OpenAI aliases and fine-tunes map to their base family, Claude
    /// models to their pool, Gemini ids lose `models/`; an Azure deployment name is its own
    /// family.
    pub(crate) fn family_id(self, lower: &str) -> String {
        match self {
            Provider::Azure => lower.to_owned(),
            Provider::OpenAi => openai_family(lower),
            Provider::Anthropic => anthropic_family(&normalize(lower)),
            Provider::Gemini => normalize(lower.strip_prefix("models/").unwrap_or(lower)),
        }
    }

    /// Whether the provider gives reserved but unused output tokens back to its buckets.
    ///
    /// OpenAI and Azure charge `n × max_tokens` when a request is admitted and do not give back
    /// what the completion did not use, so the output reservation stays charged (refunding it
    /// locally would let in requests the server then rejects with 429). Anthropic adjusts its
    /// OTPM to the real output at the end, and Gemini counts input only, so there the unused
    /// output goes back.
    pub const fn refunds_unused_output(self) -> bool {
        match self {
            Provider::OpenAi | Provider::Azure => false,
            Provider::Anthropic | Provider::Gemini => true,
        }
    }

    /// Whether prompt tokens read from the provider's cache count toward its input limit for
    /// the limit family `family_id` (input tokens are always read as the whole prompt; see
    /// [`Usage`](crate::units::cost::Usage)). Cache writes always count.
    ///
    /// - **Anthropic**: "For most Claude models, only uncached input tokens count towards your
    ///   ITPM rate limits": `input_tokens` and `cache_creation_input_tokens` count,
    ///   `cache_read_input_tokens` do not, except on the models whose ITPM is marked † in the
    ///   tables ("Limit counts `cache_read_input_tokens` towards ITPM usage"): Claude Haiku 3
    ///   and 3.5, Sonnet 3.5 and Opus 3 (the Claude 3 generation before Sonnet 3.7).
    ///   Source: platform.claude.com/docs/en/api/rate-limits, "Cache-aware ITPM", read
    ///   2026-12 (the † rows unchanged since the 2025-08 version).
    /// - **OpenAI**: "Do cached prompts contribute to TPM rate limits? Yes, as caching does
    ///   not affect rate limits" (platform.openai.com/docs/guides/prompt-caching, FAQ, read
    ///   2026-12); OpenAI's limiter charges on arrival, before any cache lookup.
    /// - **Azure OpenAI**: its prompt-caching page (learn.microsoft.com, azure ai-foundry
    ///   `how-to/prompt-caching`, read 2026-12) discounts cached tokens on the bill and says
    ///   nothing that exempts them from TPM; Azure charges its estimate on arrival like
    ///   OpenAI, so they count.
    /// - **Gemini**: `promptTokenCount` includes the cached content, and neither the rate-limits
    ///   page nor the context-caching page (ai.google.dev/gemini-api/docs/rate-limits and
    ///   `/caching`, read 2026-12) exempts cached tokens from the input TPM, so they count.
    ///   Counting too much only slows a run; counting too little draws 429s.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::config::Provider;
    /// assert!(!Provider::Anthropic.counts_cache_reads("claude-sonnet-4"));
    /// assert!(Provider::Anthropic.counts_cache_reads("claude-haiku-3"));
    /// assert!(Provider::OpenAi.counts_cache_reads("gpt-4o"));
    /// ```
    pub fn counts_cache_reads(self, family_id: &str) -> bool {
        match self {
            Provider::Anthropic => matches!(
                family_id,
                "claude-haiku-3" | "claude-sonnet-3-5" | "claude-opus-3" | "claude-sonnet-3"
            ),
            Provider::OpenAi | Provider::Azure | Provider::Gemini => true,
        }
    }

    /// The prompt tokens the provider's own limiter charges for a prompt of `text_bytes`
    /// bytes, when it estimates from characters rather than tokenizing.
    ///
    /// OpenAI's guide: the rate limit "is calculated as the maximum of max_tokens and the
    /// estimated number of tokens based on the character count of your request"; Azure's quota
    /// docs say the same of its estimate. The formula is unpublished; this takes the usual four
    /// characters per token, rounded up. It counts bytes, which are never fewer than
    /// characters, so on non-ASCII text it errs high (where tiktoken's count is the larger
    /// anyway). Anthropic and Gemini count real tokens: `None`.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::config::Provider;
    /// assert_eq!(Provider::OpenAi.charged_prompt_estimate(4_001), Some(1_001));
    /// assert_eq!(Provider::Anthropic.charged_prompt_estimate(4_001), None);
    /// ```
    pub const fn charged_prompt_estimate(self, text_bytes: usize) -> Option<u64> {
        match self {
            Provider::OpenAi | Provider::Azure => {
                Some((text_bytes as u64).div_ceil(CHARACTERS_PER_CHARGED_TOKEN))
            }
            Provider::Anthropic | Provider::Gemini => None,
        }
    }

    /// The requests per second a provider checks under its per-minute limit, by default.
    ///
    /// Azure OpenAI evaluates RPM "over a small period of time, typically 1 or 10 seconds"
    /// (600 RPM: 429 past 10 requests in one second), so it gets `RPM / 60` per second, the
    /// stricter of the two windows (at least 1). OpenAI may quantize the same way but does not
    /// say when: set `RATE_LIMITED_<FAMILY>_BURST` for it, or any other family.
    pub const fn short_window_rps(self, rpm: u64) -> Option<u64> {
        match self {
            Provider::Azure => Some(if rpm / 60 == 0 { 1 } else { rpm / 60 }),
            Provider::OpenAi | Provider::Anthropic | Provider::Gemini => None,
        }
    }

    /// Output tokens reserved per choice when neither the attribute nor an argument says
    /// `max_tokens`: [`DEFAULT_MAX_TOKENS`], or 0 for embedding models, which produce none.
    pub fn default_max_tokens(self, model: &str) -> u64 {
        if model.to_ascii_lowercase().contains("embedding") {
            0
        } else {
            DEFAULT_MAX_TOKENS
        }
    }

    /// The requests per minute a provider derives from a token quota, when it does: Azure
    /// OpenAI gives a deployment RPM in proportion to its TPM (see [`azure_rpm_from_tpm`]).
    pub fn derived_rpm(self, family_id: &str, tpm: u64) -> Option<u64> {
        match self {
            Provider::Azure => Some(azure_rpm_from_tpm(family_id, tpm)),
            Provider::OpenAi | Provider::Anthropic | Provider::Gemini => None,
        }
    }
}

/// Characters per token in the character-based prompt estimate OpenAI and Azure charge (see
/// [`Provider::charged_prompt_estimate`]).
pub const CHARACTERS_PER_CHARGED_TOKEN: u64 = 4;

/// Output tokens reserved per choice when neither the attribute nor an argument says
/// `max_tokens` (embedding models produce none). The settle refunds what is not used, where the
/// provider refunds.
pub const DEFAULT_MAX_TOKENS: u64 = 1_024;

/// Azure OpenAI's requests per minute for a deployment with `tpm` tokens per minute.
///
/// Azure derives RPM from the TPM quota with a ratio that depends on the model: o1 and
/// o1-preview get 1 RPM per 6,000 TPM; o3 and o4-mini 1 per 1,000; o3-mini, o1-mini and o3-pro
/// 1 per 10,000; other (chat) models 6 per 1,000 (Azure quota docs, 2025-07). The model is
/// recognized from the deployment name when it is named after the model (`o3-mini`,
/// `o1-2024-12-17`); any other name gets the default ratio. The result is at least 1.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::config::azure_rpm_from_tpm;
/// assert_eq!(azure_rpm_from_tpm("my-gpt-4o", 240_000), 1_440);
/// assert_eq!(azure_rpm_from_tpm("o3-mini", 240_000), 24);
/// ```
pub fn azure_rpm_from_tpm(deployment: &str, tpm: u64) -> u64 {
    let model = Provider::OpenAi.family_id(&deployment.trim().to_ascii_lowercase());
    let (requests, per_tokens) = match model.as_str() {
        "o1" => (1, 6_000),
        "o3" | "o4-mini" => (1, 1_000),
        "o3-mini" | "o1-mini" | "o3-pro" => (1, 10_000),
        _ => (6, 1_000),
    };
    (tpm.saturating_mul(requests) / per_tokens).max(1)
}

/// OpenAI model ids (already lower-cased, dates and `-latest` stripped) that draw on another
/// model's quota. Matching is exact, so `gpt-4o-mini` never falls into `gpt-4o`, `o3-mini` never
/// into `o3`, and an unlisted variant (`gpt-4o-realtime-preview`) keeps its own id.
const OPENAI_ALIASES: &[(&str, &str)] = &[
    // chatgpt-4o-latest is served from the gpt-4o quota.
    ("chatgpt-4o", "gpt-4o"),
    // "gpt-4o (including audio previews)", Sept 2025 tier-1 dump.
    ("gpt-4o-audio-preview", "gpt-4o"),
    // "gpt-4o-mini (including audio/search)".
    ("gpt-4o-mini-audio-preview", "gpt-4o-mini"),
    ("gpt-4o-mini-search-preview", "gpt-4o-mini"),
    // "gpt-4-turbo (including previews)": gpt-4-0125-preview and gpt-4-1106-preview become
    // gpt-4-preview once their date is stripped.
    ("gpt-4-turbo-preview", "gpt-4-turbo"),
    ("gpt-4-preview", "gpt-4-turbo"),
    ("gpt-4-vision-preview", "gpt-4-turbo"),
    // "o1 / o1-preview" share one row.
    ("o1-preview", "o1"),
    // "o3, o3-mini and o4-mini (including deep-research)".
    ("o3-deep-research", "o3"),
    ("o4-mini-deep-research", "o4-mini"),
];

fn openai_family(lower: &str) -> String {
    // Fine-tunes share their base model's limits: ft:<base>:<org>:<suffix>:<id>.
    let base = match lower.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or_default(),
        None => lower,
    };
    let id = normalize(base);
    OPENAI_ALIASES
        .iter()
        .find(|(alias, _)| *alias == id)
        .map_or(id, |(_, family)| (*family).to_owned())
}

/// Claude pools: Sonnet 4.x and Opus 4.x are shared across versions, Haiku 4.5 has its own,
/// Haiku 3.5 and 3 share one row of the table. Other Claude models keep a
/// `claude-<class>-<major>[-<minor>]` id with no built-in limits.
fn anthropic_family(id: &str) -> String {
    let Some(rest) = id.strip_prefix("claude-") else {
        return id.to_owned();
    };
    let mut class = None;
    let mut version: Vec<u32> = Vec::new();
    for token in rest.split(['-', '.']) {
        match token {
            "opus" | "sonnet" | "haiku" if class.is_none() => class = Some(token),
            _ if !token.is_empty()
                && token.len() <= 2
                && token.bytes().all(|b| b.is_ascii_digit()) =>
            {
                if let Ok(n) = token.parse() {
                    version.push(n);
                }
            }
            _ => {}
        }
    }
    let (Some(class), Some(&major)) = (class, version.first()) else {
        return id.to_owned();
    };
    let minor = version.get(1).copied();
    match (class, major) {
        ("sonnet" | "opus", 4..) => format!("claude-{class}-{major}"),
        ("haiku", 3) => "claude-haiku-3".to_owned(),
        _ => match minor {
            Some(minor) => format!("claude-{class}-{major}-{minor}"),
            None => format!("claude-{class}-{major}"),
        },
    }
}

/// Lower-case id without date snapshots and `-latest`.
pub(crate) fn normalize(lower: &str) -> String {
    // Vertex-style `claude-3-5-sonnet-v2@20241022`: the part after `@` is a version date.
    let lower = lower.split('@').next().unwrap_or_default();
    let tokens: Vec<&str> = lower.split('-').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        // YYYY-MM-DD
        if i > 0
            && is_year(token)
            && i + 2 < tokens.len()
            && is_month_day(tokens[i + 1], tokens[i + 2])
        {
            i += 3;
            continue;
        }
        // YYYYMMDD, or MMDD (gpt-3.5-turbo-0125, gpt-4-1106-preview, gemini-exp-1206)
        if i > 0 && token.bytes().all(|b| b.is_ascii_digit()) {
            let dated = match token.len() {
                8 => is_year(&token[..4]) && is_month_day(&token[4..6], &token[6..]),
                4 => is_month_day(&token[..2], &token[2..]),
                _ => false,
            };
            if dated {
                i += 1;
                continue;
            }
        }
        // Trailing MM-DD after a preview/experimental marker (gemini-2.5-pro-preview-05-06).
        if i + 2 == tokens.len()
            && i > 0
            && matches!(tokens[i - 1], "preview" | "exp")
            && token.len() == 2
            && tokens[i + 1].len() == 2
            && is_month_day(token, tokens[i + 1])
        {
            break;
        }
        kept.push(token);
        i += 1;
    }
    if kept.len() > 1 && kept.last() == Some(&"latest") {
        kept.pop();
    }
    kept.join("-")
}

fn is_year(token: &str) -> bool {
    token.len() == 4 && token.starts_with("20") && token.bytes().all(|b| b.is_ascii_digit())
}

fn is_month_day(month: &str, day: &str) -> bool {
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(month) || !two_digits(day) {
        return false;
    }
    let (Ok(month), Ok(day)) = (month.parse::<u8>(), day.parse::<u8>()) else {
        return false;
    };
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()).unwrap(), p);
            assert_eq!(Provider::parse(&p.as_str().to_uppercase()).unwrap(), p);
            assert_eq!(p.env_name(), p.as_str().to_uppercase());
            assert_eq!(p.to_string(), p.as_str());
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert_eq!(Provider::parse(" Anthropic ").unwrap(), Provider::Anthropic);
    }

    #[test]
    fn provider_parse_error_names_variable_value_and_accepted() {
        match Provider::parse("mistral") {
            Err(Error::Config {
                variable,
                value,
                expected,
            }) => {
                assert_eq!(variable, "provider");
                assert_eq!(value, "mistral");
                for name in ["openai", "azure", "anthropic", "gemini"] {
                    assert!(expected.contains(name), "{expected}");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Provider::parse("").is_err());
    }

    #[test]
    fn provider_inference() {
        for model in [
            "gpt-4o",
            "GPT-4o-mini",
            "gpt-3.5-turbo-0125",
            "chatgpt-4o-latest",
            "o1",
            "o1-mini",
            "o3",
            "o3-mini",
            "o4-mini",
            "o4-mini-2025-04-16",
            "text-embedding-3-small",
            "ft:gpt-4o-mini-2024-07-18:org::abc123",
        ] {
            assert_eq!(Provider::infer(model), Some(Provider::OpenAi), "{model}");
        }
        for model in ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-latest"] {
            assert_eq!(Provider::infer(model), Some(Provider::Anthropic), "{model}");
        }
        for model in ["gemini-2.5-flash", "models/gemini-1.5-pro"] {
            assert_eq!(Provider::infer(model), Some(Provider::Gemini), "{model}");
        }
        for model in [
            "llama-3.1-70b",
            "o10",
            "omni-moderation-latest",
            "ft:llama:org::x",
            "mistral-large",
            "",
        ] {
            assert_eq!(Provider::infer(model), None, "{model}");
        }
    }

    #[test]
    fn provider_prefixes_name_the_provider() {
        let cases = [
            ("openai/gpt-4o-mini", Some(Provider::OpenAi), "gpt-4o-mini"),
            ("OpenAI/gpt-4o", Some(Provider::OpenAi), "gpt-4o"),
            (
                "anthropic/claude-sonnet-4-5",
                Some(Provider::Anthropic),
                "claude-sonnet-4-5",
            ),
            ("azure/prod-chat", Some(Provider::Azure), "prod-chat"),
            (
                "gemini/gemini-2.5-flash",
                Some(Provider::Gemini),
                "gemini-2.5-flash",
            ),
            ("models/gemini-2.5-flash", None, "models/gemini-2.5-flash"),
            ("meta-llama/llama-3.1-70b", None, "meta-llama/llama-3.1-70b"),
            ("openai/", None, "openai/"),
            ("gpt-4o", None, "gpt-4o"),
        ];
        for (model, provider, rest) in cases {
            assert_eq!(Provider::split_prefix(model), (provider, rest), "{model}");
        }
    }

    #[test]
    fn output_rules_by_provider() {
        assert!(!Provider::OpenAi.refunds_unused_output());
        assert!(!Provider::Azure.refunds_unused_output());
        assert!(Provider::Anthropic.refunds_unused_output());
        assert!(Provider::Gemini.refunds_unused_output());
        assert_eq!(
            Provider::OpenAi.default_max_tokens("gpt-4o"),
            DEFAULT_MAX_TOKENS
        );
        assert_eq!(
            Provider::OpenAi.default_max_tokens("text-embedding-3-small"),
            0
        );
        assert_eq!(Provider::Azure.derived_rpm("o3-mini", 100_000), Some(10));
        assert_eq!(Provider::OpenAi.derived_rpm("o3-mini", 100_000), None);
    }

    #[test]
    fn openai_and_azure_charge_a_character_estimate() {
        assert_eq!(Provider::OpenAi.charged_prompt_estimate(0), Some(0));
        assert_eq!(Provider::OpenAi.charged_prompt_estimate(1), Some(1));
        assert_eq!(Provider::Azure.charged_prompt_estimate(8), Some(2));
        assert_eq!(Provider::Gemini.charged_prompt_estimate(8), None);
    }

    #[test]
    fn azure_caps_requests_per_second_at_a_sixtieth_of_rpm() {
        assert_eq!(Provider::Azure.short_window_rps(600), Some(10));
        assert_eq!(Provider::Azure.short_window_rps(30), Some(1));
        assert_eq!(Provider::OpenAi.short_window_rps(600), None);
    }
}
