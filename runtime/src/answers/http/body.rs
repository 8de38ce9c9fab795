//! The fields of a provider's error body that classification reads.

use std::time::Duration;

use serde_json::Value;

use super::headers::parse_go_duration;

/// The fields of a provider error body that matter for classification.
///
/// OpenAI: `{"error":{"message","type","param","code"}}`; Anthropic:
/// `{"type":"error","error":{"type","message"}}`; Gemini:
/// `{"error":{"code":429,"message","status":"RESOURCE_EXHAUSTED","details":[..]}}`, sometimes
/// wrapped in an array. A body that is not JSON is kept as the message.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    /// OpenAI `error.code` when it is a string (`rate_limit_exceeded`, `insufficient_quota`).
    pub(crate) code: Option<String>,
    /// OpenAI or Anthropic `error.type`.
    pub(crate) kind: Option<String>,
    /// Gemini `error.status`.
    pub(crate) status: Option<String>,
    /// The human-readable message (or the whole body when it is not JSON).
    pub(crate) message: String,
    /// Gemini `QuotaFailure.violations[].quotaId`.
    pub(crate) quota_ids: Vec<String>,
    /// Gemini `RetryInfo.retryDelay`.
    pub(crate) retry_delay: Option<Duration>,
    /// The body mentions Anthropic's spend-cap error code.
    pub(crate) spend_limit_code: bool,
}

impl ErrorBody {
    pub(crate) fn parse(body: &str) -> ErrorBody {
        let mut out = ErrorBody {
            spend_limit_code: body.contains("enforced_spend_limit_reached"),
            ..ErrorBody::default()
        };
        let Ok(mut value) = serde_json::from_str::<Value>(body) else {
            out.message = body.to_owned();
            return out;
        };
        if let Value::Array(items) = value {
            value = items.into_iter().next().unwrap_or(Value::Null);
        }
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        match value.get("error") {
            Some(err @ Value::Object(_)) => {
                out.code = text(err, "code");
                out.kind = text(err, "type");
                out.status = text(err, "status");
                out.message = text(err, "message").unwrap_or_default();
                for detail in err
                    .get("details")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
                    if kind.ends_with("google.rpc.QuotaFailure") {
                        out.quota_ids.extend(
                            detail
                                .get("violations")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|v| text(v, "quotaId")),
                        );
                    } else if kind.ends_with("google.rpc.RetryInfo") {
                        out.retry_delay = detail
                            .get("retryDelay")
                            .and_then(Value::as_str)
                            .and_then(|d| parse_go_duration(d.trim()));
                    }
                }
            }
            Some(Value::String(message)) => out.message = message.clone(),
            _ => out.message = text(&value, "message").unwrap_or_else(|| body.to_owned()),
        }
        out
    }

    pub(crate) fn is_quota_exhausted(&self, has_retry_after_header: bool) -> bool {
        let message = self.message.to_ascii_lowercase();
        let insufficient_quota = self.code.as_deref() == Some("insufficient_quota")
            || self.kind.as_deref() == Some("insufficient_quota");
        let anthropic_spend_cap = self.spend_limit_code
            || (self.kind.as_deref() == Some("rate_limit_error")
                && !has_retry_after_header
                && message.contains("spend"))
            || message.contains("reached your specified api usage limits");
        let gemini_per_day = self.status.as_deref() == Some("RESOURCE_EXHAUSTED")
            && self
                .quota_ids
                .iter()
                .any(|id| id.to_ascii_lowercase().contains("perday"));
        insufficient_quota || anthropic_spend_cap || gemini_per_day
    }

    pub(crate) fn is_too_large(&self, status: u16) -> bool {
        let message = self.message.trim_start();
        if self.kind.as_deref() == Some("request_too_large")
            || message
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("request too large"))
        {
            return true;
        }
        // OpenAI's TPM 429 says "Limit L, Used U, Requested R"; without "Used" it is the
        // request alone that is over the limit.
        let tokens_limit = self.kind.as_deref() == Some("tokens")
            || message.contains("tokens per min")
            || message.contains("(TPM)");
        status == 429 && tokens_limit && message.contains("Requested") && !message.contains("Used")
    }
}
