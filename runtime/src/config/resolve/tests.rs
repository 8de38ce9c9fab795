//! The resolution of a model to its profile: env over tables, errors that name the variable.

use std::time::Duration;

use super::super::test_env::{assert_config, env};
use super::super::HEADROOM_VAR;
use super::*;
use crate::config::{azure_rpm_from_tpm, REDIS_URL_VAR};

/// Resolves with the settings the same lookup gives, as the registry does.
fn resolve(
    model: &str,
    provider: Option<&str>,
    tier: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ModelProfile, Error> {
    super::resolve(
        model,
        provider,
        tier,
        &Settings::from_lookup(lookup)?,
        lookup,
    )
}

fn resolve_with(model: &str, pairs: &[(&str, &str)]) -> Result<ModelProfile, Error> {
    resolve(model, None, None, &env(pairs))
}

#[test]
fn empty_values_count_as_unset() {
    let s = Settings::from_lookup(&env(&[(HEADROOM_VAR, ""), (REDIS_URL_VAR, "  ")])).unwrap();
    assert_eq!(s, Settings::default());
    let r = resolve_with(
        "gpt-4o",
        &[(TIER_VAR, " "), ("RATE_LIMITED_GPT_4O_TPM", "")],
    )
    .unwrap();
    assert_eq!(r.tier, "tier-1");
    assert_eq!(r.quota.tpm, Some(30_000));
}

// ----- Tiers ----------------------------------------------------------------------------

#[test]
fn tier_precedence() {
    let all = [("RATE_LIMITED_OPENAI_TIER", "tier-3"), (TIER_VAR, "tier-2")];
    // attribute > provider tier > global tier > default
    let r = resolve("gpt-4o", None, Some("tier-4"), &env(&all)).unwrap();
    assert_eq!(r.tier, "tier-4");
    assert_eq!(r.quota.tpm, Some(2_000_000));
    let r = resolve("gpt-4o", None, None, &env(&all)).unwrap();
    assert_eq!(r.tier, "tier-3");
    assert_eq!(r.quota.tpm, Some(800_000));
    let r = resolve("gpt-4o", None, None, &env(&all[1..])).unwrap();
    assert_eq!(r.tier, "tier-2");
    assert_eq!(r.quota.tpm, Some(450_000));
    let r = resolve("gpt-4o", None, None, &env(&[])).unwrap();
    assert_eq!(r.tier, "tier-1");
    assert_eq!(r.quota.tpm, Some(30_000));
    // Another provider's tier variable does not apply.
    let r = resolve(
        "gpt-4o",
        None,
        None,
        &env(&[("RATE_LIMITED_ANTHROPIC_TIER", "tier-4")]),
    )
    .unwrap();
    assert_eq!(r.tier, "tier-1");
}

#[test]
fn tier_errors_name_their_variable() {
    assert_config(
        resolve("gpt-4o", None, Some("tier-9"), &env(&[])),
        "tier",
        "tier-9",
        "free, tier-1, tier-2, tier-3, tier-4, tier-5",
    );
    assert_config(
        resolve_with("gpt-4o", &[("RATE_LIMITED_OPENAI_TIER", "gold")]),
        "RATE_LIMITED_OPENAI_TIER",
        "gold",
        "free, tier-1",
    );
    assert_config(
        resolve_with("gpt-4o", &[(TIER_VAR, "build")]),
        TIER_VAR,
        "build",
        "RATE_LIMITED_OPENAI_TIER",
    );
    assert_config(
        resolve_with(
            "claude-sonnet-4-5",
            &[("RATE_LIMITED_ANTHROPIC_TIER", "tier 2")],
        ),
        "RATE_LIMITED_ANTHROPIC_TIER",
        "tier 2",
        "tier name",
    );
    // Every provider has its own tier variable.
    for provider in Provider::ALL {
        let var = provider_tier_var(provider);
        assert_config(
            resolve_tier(provider, None, &env(&[(&var, "?")])),
            &var,
            "?",
            "tier",
        );
        assert_eq!(
            resolve_tier(provider, None, &env(&[(&var, "Tier-2")])).unwrap(),
            "tier-2"
        );
    }
}

#[test]
fn free_form_tiers_for_anthropic() {
    // An Anthropic tier without a built-in table needs overrides.
    let err = resolve_with("claude-sonnet-4-5", &[(TIER_VAR, "Build")]).unwrap_err();
    match err {
        Error::UnknownModel { tier, hint, .. } => {
            assert_eq!(tier, "build");
            assert!(hint.contains("tier-1, tier-2, tier-3, tier-4"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    let r = resolve_with(
        "claude-sonnet-4-5",
        &[
            (TIER_VAR, "Build"),
            ("RATE_LIMITED_CLAUDE_SONNET_4_RPM", "2000"),
            ("RATE_LIMITED_CLAUDE_SONNET_4_ITPM", "800000"),
        ],
    )
    .unwrap();
    assert_eq!(r.tier, "build");
    assert_eq!(
        (r.quota.rpm, r.quota.itpm, r.quota.otpm),
        (Some(2_000), Some(800_000), None)
    );
    assert_eq!(r.source, None);
}

// ----- Providers ------------------------------------------------------------------------

#[test]
fn provider_explicit_inferred_or_error() {
    let r = resolve("claude-sonnet-4-5-20250929", None, None, &env(&[])).unwrap();
    assert_eq!(r.family.provider, Provider::Anthropic);
    assert_eq!(r.family.id, "claude-sonnet-4");
    assert_eq!(
        (r.quota.rpm, r.quota.itpm, r.quota.otpm),
        (Some(50), Some(30_000), Some(8_000))
    );
    let r = resolve(
        "llama-3",
        Some("OpenAI"),
        None,
        &env(&[("RATE_LIMITED_LLAMA_3_RPM", "100")]),
    )
    .unwrap();
    assert_eq!(r.family.provider, Provider::OpenAi);
    assert_config(
        resolve("gpt-4o", Some("mistral"), None, &env(&[])),
        "provider",
        "mistral",
        "openai, azure, anthropic, gemini",
    );
    // The fix leads: which key to add, then why it is needed.
    let unknown = resolve("llama-3", None, None, &env(&[])).unwrap_err();
    assert!(matches!(&unknown, Error::UnknownProvider { model, .. } if model == "llama-3"));
    let message = unknown.to_string();
    assert!(
        message.starts_with(
            "say which provider serves model `llama-3`: add `provider = \"openai\"` to \
             `#[rate_limited(..)]`"
        ),
        "{message}"
    );
    assert!(message.contains("`openai/llama-3`"), "{message}");
    assert!(message.contains("gpt-*"), "{message}");
    assert_config(
        resolve(" ", None, None, &env(&[])),
        "model",
        " ",
        "non-empty",
    );
}

// ----- Quotas and overrides -------------------------------------------------------------

#[test]
fn builtin_quota_with_headroom_and_source() {
    let r = resolve_with("gpt-4o-mini", &[(HEADROOM_VAR, "0.5")]).unwrap();
    assert_eq!(
        (r.quota.rpm, r.quota.tpm, r.quota.rpd),
        (Some(500), Some(200_000), Some(10_000))
    );
    assert_eq!(r.quota.headroom, 0.5);
    assert_eq!(r.source.unwrap().source_date, "2025-09");
    assert!(r.overrides.is_empty());
    let r = resolve_with("gpt-4o-mini", &[]).unwrap();
    assert_eq!(r.quota.headroom, 0.9);
    assert_config(
        resolve_with("gpt-4o-mini", &[(HEADROOM_VAR, "2")]),
        HEADROOM_VAR,
        "2",
        "at most 1",
    );
}

#[test]
fn every_dimension_can_be_overridden() {
    let values = [
        (Dimension::RequestsPerMinute, "RPM", "1_000", 1_000),
        (Dimension::TokensPerMinute, "TPM", "250000", 250_000),
        (Dimension::InputTokensPerMinute, "ITPM", "100_000", 100_000),
        (Dimension::OutputTokensPerMinute, "OTPM", "20000", 20_000),
        (Dimension::RequestsPerDay, "RPD", "5_000", 5_000),
        (Dimension::TokensPerDay, "TPD", "90_000_000", 90_000_000),
        (Dimension::Concurrency, "CONCURRENCY", "8", 8),
        (Dimension::MinInterval, "MIN_INTERVAL_MS", "250", 250),
    ];
    for (dimension, suffix, value, parsed) in values {
        let var = format!("RATE_LIMITED_GPT_4O_MINI_{suffix}");
        let r = resolve_with("gpt-4o-mini-2024-07-18", &[(&var, value)]).unwrap();
        assert_eq!(r.quota.limit(dimension), Some(parsed), "{var}");
        assert_eq!(r.overrides, [dimension]);
        // The other built-in values stay.
        if dimension != Dimension::RequestsPerMinute {
            assert_eq!(r.quota.rpm, Some(500));
        }
        for bad in [
            "0",
            "-5",
            "1.5",
            "200k",
            "_100",
            "100_",
            "1__0",
            "lots",
            "99999999999999999999999",
        ] {
            assert_config(
                resolve_with("gpt-4o-mini", &[(&var, bad)]),
                &var,
                bad,
                "unlimited",
            );
        }
    }
    let r = resolve_with(
        "gpt-4o-mini",
        &[("RATE_LIMITED_GPT_4O_MINI_MIN_INTERVAL_MS", "250")],
    )
    .unwrap();
    assert_eq!(r.quota.min_interval, Some(Duration::from_millis(250)));
    assert_config(
        resolve_with(
            "gpt-4o-mini",
            &[("RATE_LIMITED_GPT_4O_MINI_CONCURRENCY", "5000000000")],
        ),
        "RATE_LIMITED_GPT_4O_MINI_CONCURRENCY",
        "5000000000",
        "4294967295",
    );
}

#[test]
fn unlimited_removes_a_builtin_limit() {
    let r = resolve_with(
        "gpt-4o-mini",
        &[("RATE_LIMITED_GPT_4O_MINI_RPD", "Unlimited")],
    )
    .unwrap();
    assert_eq!(r.quota.rpd, None);
    assert_eq!(r.quota.tpm, Some(200_000));
    assert_eq!(r.overrides, [Dimension::RequestsPerDay]);
}

#[test]
fn overrides_apply_to_the_family_of_aliases() {
    let vars = [("RATE_LIMITED_GPT_4O_TPM", "60000")];
    for model in ["gpt-4o", "gpt-4o-2024-08-06", "chatgpt-4o-latest"] {
        let r = resolve_with(model, &vars).unwrap();
        assert_eq!(r.family.id, "gpt-4o");
        assert_eq!(r.quota.tpm, Some(60_000), "{model}");
    }
    // gpt-4o-mini is its own family: the gpt-4o override does not touch it.
    let r = resolve_with("gpt-4o-mini", &vars).unwrap();
    assert_eq!(r.quota.tpm, Some(200_000));
}

#[test]
fn unknown_model_needs_overrides() {
    match resolve_with("gpt-5-nano-2025-08-07", &[]).unwrap_err() {
        err @ Error::UnknownModel { .. } => {
            let text = err.to_string();
            assert!(text.contains("RATE_LIMITED_GPT_5_NANO_RPM"), "{text}");
            assert!(text.contains("RATE_LIMITED_GPT_5_NANO_TPM"), "{text}");
            let Error::UnknownModel {
                model,
                provider,
                tier,
                family_env,
                ..
            } = err
            else {
                unreachable!()
            };
            assert_eq!(model, "gpt-5-nano-2025-08-07");
            assert_eq!(provider, "openai");
            assert_eq!(tier, "tier-1");
            assert_eq!(family_env, "GPT_5_NANO");
        }
        other => panic!("{other:?}"),
    }
    match resolve_with("claude-3-7-sonnet-latest", &[]).unwrap_err() {
        Error::UnknownModel { hint, .. } => {
            for dim in ["RPM", "ITPM", "OTPM"] {
                assert!(
                    hint.contains(&format!("RATE_LIMITED_CLAUDE_SONNET_3_7_{dim}")),
                    "{hint}"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    match resolve_with("gemini-2.5-flash", &[]).unwrap_err() {
        Error::UnknownModel { hint, .. } => {
            for dim in ["RPM", "ITPM", "RPD"] {
                assert!(
                    hint.contains(&format!("RATE_LIMITED_GEMINI_2_5_FLASH_{dim}")),
                    "{hint}"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    // A family known at other tiers says which.
    match resolve("gpt-4.1-mini", None, Some("tier-3"), &env(&[])).unwrap_err() {
        Error::UnknownModel { hint, .. } => {
            assert!(hint.contains("RATE_LIMITED_GPT_4_1_MINI_TPM"), "{hint}");
            assert!(hint.contains("(tier-1)"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    // Overrides define it.
    let r = resolve_with(
        "gpt-5-nano",
        &[
            ("RATE_LIMITED_GPT_5_NANO_RPM", "500"),
            ("RATE_LIMITED_GPT_5_NANO_TPM", "200_000"),
        ],
    )
    .unwrap();
    assert_eq!((r.quota.rpm, r.quota.tpm), (Some(500), Some(200_000)));
    assert_eq!(r.source, None);
    assert_eq!(
        r.overrides,
        [Dimension::RequestsPerMinute, Dimension::TokensPerMinute]
    );
    // Explicitly unlimited is a definition too (e.g. a local endpoint).
    let r = resolve(
        "local-llm",
        Some("openai"),
        None,
        &env(&[("RATE_LIMITED_LOCAL_LLM_RPM", "unlimited")]),
    )
    .unwrap();
    assert!(r.quota.is_unlimited());
}

#[test]
fn azure_derives_rpm_from_tpm() {
    let azure = |deployment: &str, pairs: &[(&str, &str)]| {
        resolve(deployment, Some("azure"), None, &env(pairs))
    };
    let r = azure("Prod-GPT4o", &[("RATE_LIMITED_PROD_GPT4O_TPM", "240_000")]).unwrap();
    assert_eq!(r.family.id, "prod-gpt4o");
    assert_eq!((r.quota.rpm, r.quota.tpm), (Some(1_440), Some(240_000)));
    assert_eq!(r.overrides, [Dimension::TokensPerMinute]);
    let r = azure("o1", &[("RATE_LIMITED_O1_TPM", "60000")]).unwrap();
    assert_eq!(r.quota.rpm, Some(10));
    let r = azure("o1-preview", &[("RATE_LIMITED_O1_PREVIEW_TPM", "60000")]).unwrap();
    assert_eq!(r.quota.rpm, Some(10));
    let r = azure("o4-mini", &[("RATE_LIMITED_O4_MINI_TPM", "60000")]).unwrap();
    assert_eq!(r.quota.rpm, Some(60));
    for model in ["o3-mini", "o1-mini", "o3-pro"] {
        let var = format!(
            "RATE_LIMITED_{}_TPM",
            crate::model::limit_family::env_prefix(model)
        );
        let r = azure(model, &[(&var, "100000")]).unwrap();
        assert_eq!(r.quota.rpm, Some(10), "{model}");
    }
    // An explicit RPM wins, even `unlimited`.
    let r = azure(
        "chat",
        &[
            ("RATE_LIMITED_CHAT_TPM", "10000"),
            ("RATE_LIMITED_CHAT_RPM", "7"),
        ],
    )
    .unwrap();
    assert_eq!(r.quota.rpm, Some(7));
    let r = azure(
        "chat",
        &[
            ("RATE_LIMITED_CHAT_TPM", "10000"),
            ("RATE_LIMITED_CHAT_RPM", "unlimited"),
        ],
    )
    .unwrap();
    assert_eq!(r.quota.rpm, None);
    // No table: Azure needs the deployment's quota.
    match azure("gpt-4o", &[]).unwrap_err() {
        Error::UnknownModel { hint, .. } => {
            assert!(hint.contains("RATE_LIMITED_GPT_4O_TPM"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(azure_rpm_from_tpm("tiny", 100), 1);
}

#[test]
fn fine_tunes_resolve_to_base_limits() {
    let r = resolve_with("ft:gpt-4o-mini-2024-07-18:org::abc123", &[]).unwrap();
    assert_eq!(r.family.id, "gpt-4o-mini");
    assert_eq!(r.quota.tpm, Some(200_000));
}

#[test]
fn variable_names() {
    let family = LimitFamily::of(Provider::OpenAi, "gpt-4.1");
    assert_eq!(
        limit_var(&family, Dimension::TokensPerMinute),
        "RATE_LIMITED_GPT_4_1_TPM"
    );
    assert_eq!(
        limit_var(&family, Dimension::MinInterval),
        "RATE_LIMITED_GPT_4_1_MIN_INTERVAL_MS"
    );
    assert_eq!(
        provider_tier_var(Provider::Gemini),
        "RATE_LIMITED_GEMINI_TIER"
    );
}

#[test]
fn provider_prefixes_resolve_like_the_bare_id() {
    let bare = resolve_with("gpt-4o-mini", &[]).unwrap();
    let prefixed = resolve_with("openai/gpt-4o-mini", &[]).unwrap();
    assert_eq!(prefixed, bare);
    let r = resolve_with("anthropic/claude-sonnet-4-5", &[]).unwrap();
    assert_eq!(
        (r.family.provider, r.family.id.as_str()),
        (Provider::Anthropic, "claude-sonnet-4")
    );
    assert_eq!(r.encoding, Encoding::ANTHROPIC);
    // Azure is never inferred, but a prefix names it.
    let r = resolve_with(
        "azure/Prod-Chat",
        &[("RATE_LIMITED_PROD_CHAT_TPM", "60000")],
    )
    .unwrap();
    assert_eq!(
        (r.family.provider, r.family.id.as_str()),
        (Provider::Azure, "prod-chat")
    );
    assert_eq!(r.quota.rpm, Some(360));
    // An explicit provider that agrees is fine; one that contradicts the prefix is an error.
    assert!(resolve("openai/gpt-4o", Some("OpenAI"), None, &env(&[])).is_ok());
    assert_config(
        resolve("openai/gpt-4o", Some("anthropic"), None, &env(&[])),
        "provider",
        "anthropic",
        "`openai`, the provider the model id `openai/gpt-4o` names",
    );
}

#[test]
fn the_profile_carries_the_providers_rules() {
    let r = resolve_with(
        "text-embedding-3-small",
        &[("RATE_LIMITED_TEXT_EMBEDDING_3_SMALL_TPM", "1000000")],
    )
    .unwrap();
    assert_eq!((r.default_max_tokens, r.refunds_unused_output), (0, false));
    assert_eq!(r.encoding, Encoding::Cl100kBase);
    let r = resolve_with("claude-sonnet-4-5", &[]).unwrap();
    assert_eq!(
        (r.default_max_tokens, r.refunds_unused_output),
        (crate::config::DEFAULT_MAX_TOKENS, true)
    );
}

#[test]
fn headroom_comes_from_the_settings_given() {
    let settings = Settings {
        headroom: 0.25,
        ..Settings::default()
    };
    // The lookup says 0.5, but the settings are the one source.
    let r = super::resolve(
        "gpt-4o",
        None,
        None,
        &settings,
        &env(&[(HEADROOM_VAR, "0.5")]),
    )
    .unwrap();
    assert_eq!(r.quota.headroom, 0.25);
}
