//! The mapping from a model id to the limit family whose quota it draws on.
//!
//! Providers count limits per *limit family*, not per model string: `gpt-4o-2024-08-06`,
//! `gpt-4o` and `chatgpt-4o-latest` share one OpenAI quota, every Claude Sonnet 4.x shares one
//! Anthropic pool. [`LimitFamily::of`] turns a model id into that family, so that every call of
//! a family goes through one limiter.

use std::fmt;

use crate::model::provider::Provider;

/// The group of models of one provider that share one quota.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::config::{LimitFamily, Provider};
/// let family = LimitFamily::of(Provider::OpenAi, "gpt-4o-mini-2024-07-18");
/// assert_eq!(family.id, "gpt-4o-mini");
/// assert_eq!(family.env_prefix(), "GPT_4O_MINI");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitFamily {
    /// The provider the family belongs to.
    pub provider: Provider,
    /// The family id: lower case, without date snapshots or `-latest` (`gpt-4o`,
    /// `claude-sonnet-4`); for Azure, the lower-case deployment name.
    pub id: String,
}

impl LimitFamily {
    /// Maps a model id of `provider` to its limit family.
    ///
    /// The id is lower-cased and trimmed; date snapshots (`-2024-08-06`, `-0125`, `-20250929`,
    /// `@20241022`) and `-latest` are stripped. OpenAI aliases and fine-tunes
    /// (`ft:gpt-4o-mini-2024-07-18:org::abc`) map to their base family; Claude models map to
    /// their pool (`claude-sonnet-4`, `claude-opus-4`, `claude-haiku-4-5`, `claude-haiku-3`),
    /// whichever order the name uses (`claude-3-5-haiku-..`, `claude-haiku-4-5-..`). A model the
    /// library does not know keeps its normalized id. For Azure the model string is the
    /// deployment name and the family id is that name, lower-cased, untouched otherwise.
    pub fn of(provider: Provider, model: &str) -> LimitFamily {
        let lower = model.trim().to_ascii_lowercase();
        let id = provider.family_id(&lower);
        LimitFamily { provider, id }
    }

    /// The family id as it appears in env vars: upper case, every non-alphanumeric character
    /// replaced by `_` (`gpt-4o-mini` → `GPT_4O_MINI`, `gpt-4.1` → `GPT_4_1`).
    pub fn env_prefix(&self) -> String {
        env_prefix(&self.id)
    }
}

impl fmt::Display for LimitFamily {
    /// `provider/id`, e.g. `openai/gpt-4o`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.id)
    }
}

/// Upper-cases `id` and replaces every non-alphanumeric character with `_`.
pub(crate) fn env_prefix(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai(model: &str) -> String {
        LimitFamily::of(Provider::OpenAi, model).id
    }

    fn anthropic(model: &str) -> String {
        LimitFamily::of(Provider::Anthropic, model).id
    }

    #[test]
    fn openai_dated_snapshots() {
        assert_eq!(openai("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(openai("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
        assert_eq!(openai("gpt-3.5-turbo-0125"), "gpt-3.5-turbo");
        assert_eq!(openai("gpt-4-0613"), "gpt-4");
        assert_eq!(openai("gpt-4.1-2025-04-14"), "gpt-4.1");
        assert_eq!(openai("gpt-4.1-mini-2025-04-14"), "gpt-4.1-mini");
        assert_eq!(openai("gpt-4-turbo-2024-04-09"), "gpt-4-turbo");
        assert_eq!(openai("o1-2024-12-17"), "o1");
        assert_eq!(openai("o3-mini-2025-01-31"), "o3-mini");
        assert_eq!(openai("GPT-4o-2024-05-13"), "gpt-4o");
    }

    #[test]
    fn openai_aliases_and_latest() {
        assert_eq!(openai("chatgpt-4o-latest"), "gpt-4o");
        assert_eq!(openai("gpt-4o-audio-preview-2024-12-17"), "gpt-4o");
        assert_eq!(openai("gpt-4o-mini-audio-preview"), "gpt-4o-mini");
        assert_eq!(
            openai("gpt-4o-mini-search-preview-2025-03-11"),
            "gpt-4o-mini"
        );
        assert_eq!(openai("gpt-4-turbo-preview"), "gpt-4-turbo");
        assert_eq!(openai("gpt-4-0125-preview"), "gpt-4-turbo");
        assert_eq!(openai("gpt-4-1106-preview"), "gpt-4-turbo");
        assert_eq!(openai("o1-preview"), "o1");
        assert_eq!(openai("o1-preview-2024-09-12"), "o1");
        assert_eq!(openai("o3-deep-research"), "o3");
        assert_eq!(openai("o4-mini-deep-research-2025-06-26"), "o4-mini");
        assert_eq!(openai("gpt-5-chat-latest"), "gpt-5-chat");
        assert_eq!(openai("text-embedding-3-large"), "text-embedding-3-large");
        assert_eq!(openai("text-embedding-ada-002"), "text-embedding-ada-002");
    }

    #[test]
    fn openai_fine_tunes_share_base_limits() {
        assert_eq!(
            openai("ft:gpt-4o-mini-2024-07-18:org::abc123"),
            "gpt-4o-mini"
        );
        assert_eq!(
            openai("ft:gpt-3.5-turbo-0125:my-org:custom-suffix:9abc"),
            "gpt-3.5-turbo"
        );
        assert_eq!(openai("ft:gpt-4.1-2025-04-14:acme::x1"), "gpt-4.1");
    }

    #[test]
    fn openai_prefix_traps() {
        assert_eq!(openai("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(openai("gpt-4.1-mini"), "gpt-4.1-mini");
        assert_eq!(openai("gpt-4.1-nano"), "gpt-4.1-nano");
        assert_eq!(openai("o3-mini"), "o3-mini");
        assert_eq!(openai("o1-mini"), "o1-mini");
        assert_eq!(openai("gpt-4-turbo"), "gpt-4-turbo");
        assert_eq!(openai("gpt-4"), "gpt-4");
        // Variants with quotas of their own keep their id rather than joining a shorter family.
        assert_eq!(openai("gpt-4o-realtime-preview"), "gpt-4o-realtime-preview");
        assert_eq!(openai("gpt-4o-mini-tts"), "gpt-4o-mini-tts");
        assert_eq!(openai("gpt-3.5-turbo-instruct"), "gpt-3.5-turbo-instruct");
        assert_eq!(openai("o3-pro"), "o3-pro");
        assert_eq!(openai("gpt-4-32k"), "gpt-4-32k");
    }

    #[test]
    fn unknown_models_keep_normalized_id() {
        assert_eq!(openai("gpt-5-nano-2025-08-07"), "gpt-5-nano");
        assert_eq!(openai("My-Local-Model"), "my-local-model");
        assert_eq!(
            LimitFamily::of(Provider::Gemini, "models/gemini-1.5-pro-latest").id,
            "gemini-1.5-pro"
        );
        assert_eq!(
            LimitFamily::of(Provider::Gemini, "gemini-2.5-pro-preview-05-06").id,
            "gemini-2.5-pro-preview"
        );
        assert_eq!(
            LimitFamily::of(Provider::Gemini, "gemini-2.0-flash-001").id,
            "gemini-2.0-flash-001"
        );
        assert_eq!(
            LimitFamily::of(Provider::Gemini, "gemini-exp-1206").id,
            "gemini-exp"
        );
    }

    #[test]
    fn anthropic_families() {
        assert_eq!(anthropic("claude-sonnet-4-5-20250929"), "claude-sonnet-4");
        assert_eq!(anthropic("claude-sonnet-4-20250514"), "claude-sonnet-4");
        assert_eq!(anthropic("claude-sonnet-4-5"), "claude-sonnet-4");
        assert_eq!(anthropic("claude-sonnet-4-0"), "claude-sonnet-4");
        assert_eq!(anthropic("claude-4-sonnet"), "claude-sonnet-4");
        assert_eq!(anthropic("claude-opus-4-1"), "claude-opus-4");
        assert_eq!(anthropic("claude-opus-4-1-20250805"), "claude-opus-4");
        assert_eq!(anthropic("claude-opus-4-20250514"), "claude-opus-4");
        assert_eq!(anthropic("Claude-Opus-4-5"), "claude-opus-4");
        assert_eq!(anthropic("claude-haiku-4-5-20251001"), "claude-haiku-4-5");
        assert_eq!(anthropic("claude-haiku-4-5"), "claude-haiku-4-5");
        assert_eq!(anthropic("claude-3-5-haiku-20241022"), "claude-haiku-3");
        assert_eq!(anthropic("claude-3-5-haiku-latest"), "claude-haiku-3");
        assert_eq!(anthropic("claude-3-haiku-20240307"), "claude-haiku-3");
        assert_eq!(anthropic("claude-3.5-haiku"), "claude-haiku-3");
        // Older models keep an id of their own (no built-in table).
        assert_eq!(anthropic("claude-3-7-sonnet-latest"), "claude-sonnet-3-7");
        assert_eq!(
            anthropic("claude-3-5-sonnet-v2@20241022"),
            "claude-sonnet-3-5"
        );
        assert_eq!(anthropic("claude-3-opus-20240229"), "claude-opus-3");
        assert_eq!(anthropic("claude-2.1"), "claude-2.1");
        assert_eq!(anthropic("claude-instant-1.2"), "claude-instant-1.2");
    }

    #[test]
    fn azure_uses_deployment_name() {
        let family = LimitFamily::of(Provider::Azure, " My-GPT4o-Deployment-2024-08-06 ");
        assert_eq!(family.id, "my-gpt4o-deployment-2024-08-06");
        assert_eq!(family.provider, Provider::Azure);
        assert_eq!(family.to_string(), "azure/my-gpt4o-deployment-2024-08-06");
    }

    #[test]
    fn env_prefixes() {
        let prefix = |p, m| LimitFamily::of(p, m).env_prefix();
        assert_eq!(prefix(Provider::OpenAi, "gpt-4o-mini"), "GPT_4O_MINI");
        assert_eq!(prefix(Provider::OpenAi, "gpt-4.1"), "GPT_4_1");
        assert_eq!(
            prefix(Provider::OpenAi, "gpt-3.5-turbo-0125"),
            "GPT_3_5_TURBO"
        );
        assert_eq!(
            prefix(Provider::Anthropic, "claude-haiku-4-5-20251001"),
            "CLAUDE_HAIKU_4_5"
        );
        assert_eq!(prefix(Provider::Azure, "prod/eu.gpt"), "PROD_EU_GPT");
    }

    #[test]
    fn cache_reads_count_except_on_current_claude_models() {
        let anthropic = |model: &str| {
            let family = LimitFamily::of(Provider::Anthropic, model);
            Provider::Anthropic.counts_cache_reads(&family.id)
        };
        // Marked † on Anthropic's rate-limits page: cache reads count toward ITPM.
        for model in [
            "claude-3-5-haiku-20241022",
            "claude-3-haiku-20240307",
            "claude-3-5-sonnet-20241022",
            "claude-3-5-sonnet-20240620",
            "claude-3-opus-20240229",
        ] {
            assert!(anthropic(model), "{model}");
        }
        for model in [
            "claude-3-7-sonnet-20250219",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-haiku-4-5",
            "claude-opus-4-6",
        ] {
            assert!(!anthropic(model), "{model}");
        }
        for provider in [Provider::OpenAi, Provider::Azure, Provider::Gemini] {
            assert!(provider.counts_cache_reads("gpt-4o"), "{provider}");
        }
    }
}
