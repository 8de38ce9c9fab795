//! Recognising an LLM request on the wire, shared by the HTTP-stack integrations
//! ([`reqwest_middleware`](super::reqwest_middleware), [`tower`](super::tower)): which
//! provider's endpoint it calls, for which model, and what it may cost; and [`Routes`], what
//! those integrations do with the requests they see.
//!
//! | provider | method and path | model from |
//! |---|---|---|
//! | OpenAI | `POST …/chat/completions`, `…/responses`, `…/embeddings` | the body's `model` |
//! | Azure OpenAI | the same under `/openai/deployments/{deployment}/…`, `/openai/v1/…`, or on a `*.openai.azure.com` / `*.cognitiveservices.azure.com` host | a mapped deployment ([`Routes::map_deployment`]), else the body's `model`, else the deployment name |
//! | Anthropic | `POST …/v1/messages` | the body's `model` |
//! | Gemini | `POST …/models/{model}:generateContent`, `…:streamGenerateContent` | the path |
//!
//! A host mapped with [`Routes::map_host`] takes its model from the mapping instead. The body
//! must be a JSON object; the prompt estimate is [`EstimateTokens`] for `serde_json::Value`,
//! the output budget `max_completion_tokens` / `max_tokens` / `max_output_tokens` and `n`
//! (Gemini: `generationConfig.maxOutputTokens` and `candidateCount`; embeddings: none).

use std::fmt;

use serde_json::Value;

use crate::model::output::{MaxOutput, OutputBudget};
use crate::model::tokens::estimate::EstimateTokens;
use crate::registry::Registry;

/// The kind of LLM endpoint a request calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// OpenAI / Azure `chat/completions`.
    ChatCompletions,
    /// OpenAI / Azure `responses`.
    Responses,
    /// OpenAI / Azure `embeddings`: no output tokens.
    Embeddings,
    /// Anthropic `v1/messages`.
    Messages,
    /// Gemini `models/{model}:generateContent`.
    GenerateContent,
    /// Gemini `models/{model}:streamGenerateContent`.
    StreamGenerateContent,
}

/// An LLM request recognised from its method, host, path and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmRequest {
    /// The endpoint it calls.
    pub endpoint: Endpoint,
    /// The provider whose limits apply: `"openai"`, `"azure"`, `"anthropic"`, `"gemini"`, or
    /// `None` for a mapped host (inferred from the model name, as `#[rate_limited]` does).
    pub provider: Option<&'static str>,
    /// The model (or mapped model) whose limit family the request reserves on.
    pub model: String,
    /// The parsed body.
    pub body: Value,
}

impl LlmRequest {
    /// Recognises a request as [`Routes`] would, without any mapping: `None` for anything that
    /// is not a `POST` of a JSON object to a known LLM endpoint.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::integrations::llm::{Endpoint, LlmRequest};
    ///
    /// let body = br#"{"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": []}"#;
    /// let request = LlmRequest::recognise("POST", "api.anthropic.com", "/v1/messages", body).unwrap();
    /// assert_eq!(request.endpoint, Endpoint::Messages);
    /// assert_eq!(request.provider, Some("anthropic"));
    /// assert_eq!(request.model, "claude-sonnet-4-5");
    /// assert_eq!(request.output_budget().max_tokens, Some(64));
    /// ```
    pub fn recognise(method: &str, host: &str, path: &str, body: &[u8]) -> Option<LlmRequest> {
        Routes::new().recognise(method, host, path, body)
    }

    /// What the request may produce: `n × max_tokens`, as the body says.
    pub fn output_budget(&self) -> MaxOutput {
        match self.endpoint {
            Endpoint::Embeddings => MaxOutput {
                max_tokens: Some(0),
                n: None,
            },
            Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
                let config = self.body.get("generationConfig");
                let read = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_u64);
                MaxOutput {
                    max_tokens: read("maxOutputTokens"),
                    n: read("candidateCount").map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                }
            }
            _ => self.body.output_budget(),
        }
    }

    /// The prompt estimate's text length in bytes (see [`EstimateTokens::text_len`]).
    pub(crate) fn text_len(&self) -> usize {
        self.body.text_len()
    }
}

/// What to do with a request that is not a recognised LLM request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unrecognised {
    /// Send it untouched: no reservation, no retry (the default).
    #[default]
    Pass,
    /// Limit it as one request of `model`'s family, with no tokens: it waits its turn on the
    /// requests dimension and the concurrency cap, and its 429s and transient failures are
    /// retried; its body is never read.
    LimitAs {
        /// The model whose family it counts against.
        model: String,
    },
}

impl Unrecognised {
    /// [`Unrecognised::LimitAs`] `model`.
    pub fn limit_as(model: impl Into<String>) -> Self {
        Unrecognised::LimitAs {
            model: model.into(),
        }
    }
}

/// What an HTTP-stack integration does with the requests it sees: which it recognises, the
/// family each reserves on, and the call settings (registry, tier, retries) the attribute's
/// keys would give.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::integrations::llm::{Routes, Unrecognised};
///
/// let routes = Routes::new()
///     // An OpenAI-compatible gateway of your own, limited as gpt-4o-mini's family.
///     .map_host("llm.internal", "gpt-4o-mini")
///     // An Azure deployment whose name is not a model name.
///     .map_deployment("prod-chat", "gpt-4o")
///     .unrecognised(Unrecognised::Pass)
///     .retries(3);
/// let request = routes
///     .recognise("POST", "llm.internal:8080", "/v1/chat/completions", br#"{"model": "local"}"#)
///     .unwrap();
/// assert_eq!(request.model, "gpt-4o-mini");
/// ```
#[derive(Clone, Default)]
pub struct Routes {
    hosts: Vec<(String, String)>,
    deployments: Vec<(String, String)>,
    pub(crate) unrecognised: Unrecognised,
    pub(crate) registry: Option<Registry>,
    pub(crate) tier: Option<String>,
    pub(crate) retries: Option<u32>,
}

impl Routes {
    /// Every known endpoint recognised, nothing mapped, unrecognised requests passed through,
    /// the [current](Registry::current) registry, the tier and retries from the environment.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Limits every LLM request to `host` (a host name, with or without its port) as `model`,
    /// whatever model the body names: for an OpenAI-compatible gateway or a self-hosted server
    /// whose limits you define (`RATE_LIMITED_<FAMILY>_RPM`, ...).
    pub fn map_host(mut self, host: impl Into<String>, model: impl Into<String>) -> Self {
        self.hosts
            .push((host.into().to_ascii_lowercase(), model.into()));
        self
    }

    /// Limits requests to the Azure deployment `deployment` as `model`.
    pub fn map_deployment(
        mut self,
        deployment: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        self.deployments.push((deployment.into(), model.into()));
        self
    }

    /// What to do with requests that are not recognised (default [`Unrecognised::Pass`]).
    pub fn unrecognised(mut self, unrecognised: Unrecognised) -> Self {
        self.unrecognised = unrecognised;
        self
    }

    /// Uses `registry` instead of the current one.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The tier, as `#[rate_limited(tier = ..)]` (default: from the environment).
    pub fn tier(mut self, tier: impl Into<String>) -> Self {
        self.tier = Some(tier.into());
        self
    }

    /// The retry budget, as `#[rate_limited(retries = ..)]` (default:
    /// `RATE_LIMITED_MAX_RETRIES`); 0 means no retry.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Whether a request with `method` and `path` can be an LLM request at all (whatever its
    /// host and body): only those bodies are read.
    pub fn may_recognise(&self, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        method.eq_ignore_ascii_case("POST") && endpoint_of(path).is_some()
    }

    /// The LLM request `method`, `host`, `path` and `body` make, with this configuration's
    /// mappings applied; `None` if it is not one (see the [module](self)).
    pub fn recognise(
        &self,
        method: &str,
        host: &str,
        path: &str,
        body: &[u8],
    ) -> Option<LlmRequest> {
        if !method.eq_ignore_ascii_case("POST") {
            return None;
        }
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        let (endpoint, path_model) = endpoint_of(path)?;
        let body: Value = serde_json::from_slice(body).ok()?;
        if !body.is_object() {
            return None;
        }
        let host = host.to_ascii_lowercase();
        let host_name = host.split(':').next().unwrap_or(&host);
        if let Some((_, model)) = self
            .hosts
            .iter()
            .find(|(mapped, _)| *mapped == host || mapped == host_name)
        {
            return Some(LlmRequest {
                endpoint,
                provider: None,
                model: model.clone(),
                body,
            });
        }
        let body_model = body.get("model").and_then(Value::as_str).map(str::to_owned);
        let (provider, model) = match endpoint {
            Endpoint::Messages => ("anthropic", body_model?),
            Endpoint::GenerateContent | Endpoint::StreamGenerateContent => ("gemini", path_model?),
            Endpoint::ChatCompletions | Endpoint::Responses | Endpoint::Embeddings => {
                let deployment = deployment_of(path);
                let azure = deployment.is_some()
                    || path.starts_with("/openai/")
                    || host_name.ends_with(".openai.azure.com")
                    || host_name.ends_with(".cognitiveservices.azure.com");
                let mapped = deployment.and_then(|d| {
                    self.deployments
                        .iter()
                        .find(|(name, _)| name == d)
                        .map(|(_, model)| model.clone())
                });
                let model = mapped
                    .or(body_model)
                    .or_else(|| deployment.map(str::to_owned))?;
                (if azure { "azure" } else { "openai" }, model)
            }
        };
        Some(LlmRequest {
            endpoint,
            provider: Some(provider),
            model,
            body,
        })
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("hosts", &self.hosts)
            .field("deployments", &self.deployments)
            .field("unrecognised", &self.unrecognised)
            .field("registry", &self.registry.as_ref().map(|_| "explicit"))
            .field("tier", &self.tier)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The endpoint a path ends in, and the model a Gemini path names.
fn endpoint_of(path: &str) -> Option<(Endpoint, Option<String>)> {
    if let Some(last) = path.rsplit('/').next() {
        if let Some((model, action)) = last.split_once(':') {
            let endpoint = match action {
                "generateContent" => Endpoint::GenerateContent,
                "streamGenerateContent" => Endpoint::StreamGenerateContent,
                _ => return None,
            };
            let in_models = path
                .rsplit('/')
                .nth(1)
                .is_some_and(|parent| parent == "models");
            return (in_models && !model.is_empty()).then(|| (endpoint, Some(model.to_owned())));
        }
    }
    let endpoint = if path.ends_with("/chat/completions") {
        Endpoint::ChatCompletions
    } else if path.ends_with("/embeddings") {
        Endpoint::Embeddings
    } else if path.ends_with("/responses") {
        Endpoint::Responses
    } else if path.ends_with("/v1/messages") {
        Endpoint::Messages
    } else {
        return None;
    };
    Some((endpoint, None))
}

/// The Azure deployment in `/openai/deployments/{deployment}/...`.
fn deployment_of(path: &str) -> Option<&str> {
    let rest = path.split_once("/openai/deployments/")?.1;
    rest.split('/').next().filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognise(host: &str, path: &str, body: &str) -> Option<LlmRequest> {
        Routes::new().recognise("POST", host, path, body.as_bytes())
    }

    #[test]
    fn each_provider_endpoint_is_recognised_with_its_model() {
        let chat = recognise(
            "api.openai.com",
            "/v1/chat/completions",
            r#"{"model":"gpt-4o"}"#,
        )
        .unwrap();
        assert_eq!(
            (chat.endpoint, chat.provider, chat.model.as_str()),
            (Endpoint::ChatCompletions, Some("openai"), "gpt-4o")
        );
        let responses = recognise(
            "api.openai.com",
            "/v1/responses",
            r#"{"model":"o4-mini","max_output_tokens":9}"#,
        )
        .unwrap();
        assert_eq!(responses.endpoint, Endpoint::Responses);
        assert_eq!(responses.output_budget().max_tokens, Some(9));
        let embeddings = recognise(
            "api.openai.com",
            "/v1/embeddings",
            r#"{"model":"text-embedding-3-small","input":"x"}"#,
        )
        .unwrap();
        assert_eq!(embeddings.output_budget().max_tokens, Some(0));
        let azure = recognise(
            "me.openai.azure.com",
            "/openai/deployments/prod/chat/completions?api-version=2024-10-21",
            r#"{"messages":[]}"#,
        )
        .unwrap();
        assert_eq!(
            (azure.provider, azure.model.as_str()),
            (Some("azure"), "prod")
        );
        let gemini = recognise(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            r#"{"contents":[],"generationConfig":{"maxOutputTokens":50,"candidateCount":2}}"#,
        )
        .unwrap();
        assert_eq!(
            (gemini.endpoint, gemini.model.as_str()),
            (Endpoint::StreamGenerateContent, "gemini-2.0-flash")
        );
        assert_eq!(
            gemini.output_budget(),
            MaxOutput {
                max_tokens: Some(50),
                n: Some(2)
            }
        );
    }

    #[test]
    fn other_requests_are_not_recognised() {
        assert!(recognise("api.openai.com", "/v1/models", "{}").is_none());
        assert!(recognise("api.openai.com", "/v1/chat/completions", "not json").is_none());
        assert!(recognise("api.openai.com", "/v1/chat/completions", "[1]").is_none());
        assert!(recognise(
            "api.anthropic.com",
            "/v1/messages/count_tokens",
            r#"{"model":"claude-sonnet-4"}"#
        )
        .is_none());
        assert!(
            recognise("api.anthropic.com", "/v1/messages", "{}").is_none(),
            "no model"
        );
        assert!(recognise("x", "/v1beta/models/gemini-2.0-flash:countTokens", "{}").is_none());
        assert!(Routes::new()
            .recognise("GET", "api.openai.com", "/v1/chat/completions", b"{}")
            .is_none());
    }

    #[test]
    fn mappings_name_the_model() {
        let routes = Routes::new()
            .map_host("LLM.internal", "gpt-4o-mini")
            .map_deployment("prod", "gpt-4o");
        let hosted = routes
            .recognise(
                "POST",
                "llm.internal:8080",
                "/v1/chat/completions",
                br#"{"model":"local"}"#,
            )
            .unwrap();
        assert_eq!(
            (hosted.provider, hosted.model.as_str()),
            (None, "gpt-4o-mini")
        );
        let deployed = routes
            .recognise(
                "POST",
                "me.openai.azure.com",
                "/openai/deployments/prod/embeddings",
                br#"{"input":"x"}"#,
            )
            .unwrap();
        assert_eq!(
            (deployed.provider, deployed.model.as_str()),
            (Some("azure"), "gpt-4o")
        );
    }
}
