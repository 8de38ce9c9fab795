//! Reading the real token usage from a call's result, to settle its reservation.

use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;

use crate::answers::http::RateLimitHeaders;
use crate::units::cost::Usage;

/// How a returned value reports the tokens the call really used.
///
/// After the call, the limiter settles its reservation to this usage (refunding an
/// over-estimate, debiting an under-estimate). `None` means "unknown": the estimate stands.
///
/// Implemented for [`Usage`] itself, `serde_json::Value` (the raw JSON of an OpenAI, Azure,
/// Anthropic or Gemini response), `()` and `String` (no usage), and for `&T`, `Box<T>`, `Rc<T>`,
/// `Arc<T>`, `Option<T>`, `Result<T, E>` (the `Ok` value), `Vec<T>` and slices (the sum of the
/// items that report usage). For your own response type, read its usage fields:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{ReportUsage, Usage};
///
/// struct ChatResponse { text: String, prompt_tokens: u32, completion_tokens: u32 }
///
/// impl ReportUsage for ChatResponse {
///     fn usage(&self) -> Option<Usage> {
///         Some(Usage::new(self.prompt_tokens.into(), self.completion_tokens.into()))
///     }
/// }
/// # let r = ChatResponse { text: String::new(), prompt_tokens: 3, completion_tokens: 4 };
/// # assert_eq!(r.usage(), Some(Usage::new(3, 4)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not report the tokens the call used",
    label = "the limiter cannot read usage from this type",
    note = "return the parsed body instead: `serde_json::Value` (`response.json().await?`) or \
            `ratelimited::http::WithHeaders<serde_json::Value>` (the body and the response's \
            rate-limit headers) report their usage",
    note = "for a type of your own crate, implement `ratelimited::ReportUsage`: return \
            `Some(Usage::new(input_tokens, output_tokens))` from its usage fields, or `None` to \
            keep the estimate (another crate's type, such as `reqwest::Response`, cannot have \
            the impl: wrap it or return its parsed body)"
)]
pub trait ReportUsage {
    /// The tokens the call really used, if this value knows.
    fn usage(&self) -> Option<Usage>;

    /// The provider's rate-limit headers from the response, if this value kept them.
    ///
    /// When present, `#[rate_limited]` tightens the family's limiter to what the server says
    /// is in use (never loosening it), which keeps a client whose buckets started before its
    /// first request arrived from running ahead of the server. Response types that keep their
    /// HTTP headers should return [`RateLimitHeaders::parse`] of them.
    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        None
    }
}

impl ReportUsage for Usage {
    fn usage(&self) -> Option<Usage> {
        Some(*self)
    }
}

impl ReportUsage for () {
    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl ReportUsage for String {
    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl ReportUsage for str {
    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl<T: ReportUsage + ?Sized> ReportUsage for &T {
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        (**self).rate_limit_headers()
    }
}

impl<T: ReportUsage + ?Sized> ReportUsage for &mut T {
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        (**self).rate_limit_headers()
    }
}

impl<T: ReportUsage + ?Sized> ReportUsage for Box<T> {
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        (**self).rate_limit_headers()
    }
}

impl<T: ReportUsage + ?Sized> ReportUsage for Rc<T> {
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        (**self).rate_limit_headers()
    }
}

impl<T: ReportUsage + ?Sized> ReportUsage for Arc<T> {
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        (**self).rate_limit_headers()
    }
}

impl<T: ReportUsage> ReportUsage for Option<T> {
    fn usage(&self) -> Option<Usage> {
        self.as_ref().and_then(ReportUsage::usage)
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        self.as_ref().and_then(ReportUsage::rate_limit_headers)
    }
}

/// The `Ok` value's usage; an error reports none.
impl<T: ReportUsage, E> ReportUsage for Result<T, E> {
    fn usage(&self) -> Option<Usage> {
        self.as_ref().ok().and_then(ReportUsage::usage)
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        self.as_ref().ok().and_then(ReportUsage::rate_limit_headers)
    }
}

/// The sum over the items that report usage (a batch of responses); `None` if none do.
impl<T: ReportUsage> ReportUsage for [T] {
    fn usage(&self) -> Option<Usage> {
        self.iter()
            .filter_map(ReportUsage::usage)
            .reduce(Usage::plus)
    }
}

/// The sum over the items, as for slices.
impl<T: ReportUsage> ReportUsage for Vec<T> {
    fn usage(&self) -> Option<Usage> {
        self.as_slice().usage()
    }
}

/// The usage of a provider's JSON response.
///
/// | provider | object | input (the whole prompt) | of it, cache reads | of it, cache writes | output |
/// |---|---|---|---|---|---|
/// | OpenAI / Azure chat, completions | `usage` | `prompt_tokens` | `prompt_tokens_details.cached_tokens` | `prompt_tokens_details.cache_write_tokens` | `completion_tokens` |
/// | OpenAI embeddings | `usage` | `prompt_tokens` | – | – | 0 |
/// | OpenAI Responses API | `usage` | `input_tokens` | `input_tokens_details.cached_tokens` | – | `output_tokens` |
/// | Anthropic | `usage` | `input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens` | `cache_read_input_tokens` | `cache_creation_input_tokens` | `output_tokens` |
/// | Gemini | `usageMetadata` | `promptTokenCount` + `toolUsePromptTokenCount` | `cachedContentTokenCount` | – | `candidatesTokenCount` + `thoughtsTokenCount` |
///
/// The input is always the whole prompt: OpenAI's `prompt_tokens` and Gemini's
/// `promptTokenCount` already include their cached part ("When cachedContent is set, this is
/// still the total effective prompt size", Gemini's `UsageMetadata` reference); Anthropic's
/// `input_tokens` is only what follows the last cache breakpoint, so its two cache counts are
/// added ("total_input_tokens = cache_read_input_tokens + cache_creation_input_tokens +
/// input_tokens", Anthropic's rate-limits page). Which of it counts toward a limit is decided
/// when the reservation settles, per provider and model
/// ([`ModelProfile::charged_usage`](crate::config::ModelProfile::charged_usage)). Reasoning
/// tokens are already inside OpenAI's `completion_tokens`; Gemini reports thinking separately,
/// so it is added.
///
/// A JSON array sums its elements; any other value without a recognisable usage object is
/// `None`.
impl ReportUsage for Value {
    fn usage(&self) -> Option<Usage> {
        match self {
            Value::Array(items) => items.usage(),
            Value::Object(map) => {
                if let Some(usage @ Value::Object(_)) = map.get("usage") {
                    openai_or_anthropic(usage)
                } else if let Some(meta @ Value::Object(_)) = map.get("usageMetadata") {
                    gemini(meta)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

fn field(object: &Value, key: &str) -> Option<u64> {
    object.get(key).and_then(Value::as_u64)
}

/// The input counts of an OpenAI or Anthropic `usage` object: the whole prompt, its cache
/// reads and its cache writes; `None` without `prompt_tokens` or `input_tokens`. Shared with
/// the stream readers.
pub(crate) fn input_counts(usage: &Value) -> Option<(u64, u64, u64)> {
    if let Some(prompt) = field(usage, "prompt_tokens") {
        let details = usage.get("prompt_tokens_details");
        let detail = |key| details.and_then(|d| field(d, key)).unwrap_or(0);
        return Some((
            prompt,
            detail("cached_tokens"),
            detail("cache_write_tokens"),
        ));
    }
    let input = field(usage, "input_tokens")?;
    let read = field(usage, "cache_read_input_tokens");
    let creation = field(usage, "cache_creation_input_tokens");
    if read.is_some() || creation.is_some() {
        // Anthropic: `input_tokens` is the uncached part only.
        let (read, creation) = (read.unwrap_or(0), creation.unwrap_or(0));
        let whole = input.saturating_add(read).saturating_add(creation);
        return Some((whole, read, creation));
    }
    // OpenAI's Responses API: `input_tokens` is the whole prompt.
    let cached = usage
        .get("input_tokens_details")
        .and_then(|d| field(d, "cached_tokens"))
        .unwrap_or(0);
    Some((input, cached, 0))
}

/// A usage from the whole prompt, its cache reads and writes, and the output.
pub(crate) fn usage_of((input, read, creation): (u64, u64, u64), output: u64) -> Usage {
    Usage::new(input, output)
        .with_cache_reads(read)
        .with_cache_writes(creation)
}

fn openai_or_anthropic(usage: &Value) -> Option<Usage> {
    let input = input_counts(usage)?;
    let output_tokens = field(usage, "completion_tokens")
        .or_else(|| field(usage, "output_tokens"))
        .unwrap_or(0);
    Some(usage_of(input, output_tokens))
}

fn gemini(meta: &Value) -> Option<Usage> {
    let prompt = field(meta, "promptTokenCount")?;
    let tool_prompt = field(meta, "toolUsePromptTokenCount").unwrap_or(0);
    let cached = field(meta, "cachedContentTokenCount").unwrap_or(0);
    let candidates = field(meta, "candidatesTokenCount").unwrap_or(0);
    let thoughts = field(meta, "thoughtsTokenCount").unwrap_or(0);
    Some(usage_of(
        (prompt.saturating_add(tool_prompt), cached, 0),
        candidates.saturating_add(thoughts),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_chat_counts_cached_prompt_tokens() {
        let response = json!({
            "id": "chatcmpl-abc",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 128}
            }
        });
        assert_eq!(
            response.usage(),
            Some(Usage::new(2006, 300).with_cache_reads(1920))
        );
        let writes = json!({"usage": {
            "prompt_tokens": 5000, "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 4096}
        }});
        assert_eq!(
            writes.usage(),
            Some(Usage::new(5000, 10).with_cache_writes(4096))
        );
    }

    #[test]
    fn openai_embeddings_have_no_output() {
        let response = json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8}
        });
        assert_eq!(response.usage(), Some(Usage::new(8, 0)));
    }

    #[test]
    fn openai_responses_api() {
        let response = json!({
            "object": "response",
            "usage": {
                "input_tokens": 125, "output_tokens": 48, "total_tokens": 173,
                "input_tokens_details": {"cached_tokens": 98},
                "output_tokens_details": {"reasoning_tokens": 0}
            }
        });
        assert_eq!(
            response.usage(),
            Some(Usage::new(125, 48).with_cache_reads(98))
        );
    }

    #[test]
    fn anthropic_adds_both_cache_counts_to_the_uncached_input() {
        let response = json!({
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 21,
                "cache_creation_input_tokens": 188,
                "cache_read_input_tokens": 4000,
                "output_tokens": 393
            }
        });
        let usage = response.usage().unwrap();
        assert_eq!(
            usage,
            Usage::new(21 + 188 + 4000, 393)
                .with_cache_reads(4000)
                .with_cache_writes(188)
        );
        assert_eq!(usage.uncached_input_tokens(), 21);
        let plain = json!({"usage": {"input_tokens": 10, "output_tokens": 2}});
        assert_eq!(plain.usage(), Some(Usage::new(10, 2)));
    }

    #[test]
    fn gemini_usage_metadata() {
        let response = json!({
            "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}],
            "usageMetadata": {
                "promptTokenCount": 11,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 5,
                "totalTokenCount": 36
            },
            "modelVersion": "gemini-2.5-flash"
        });
        assert_eq!(response.usage(), Some(Usage::new(11, 25)));
        let cached = json!({"usageMetadata": {
            "promptTokenCount": 12000, "cachedContentTokenCount": 10000,
            "candidatesTokenCount": 50, "totalTokenCount": 12050
        }});
        assert_eq!(
            cached.usage(),
            Some(Usage::new(12000, 50).with_cache_reads(10000))
        );
    }

    #[test]
    fn values_without_usage_and_wrappers() {
        assert_eq!(json!({"choices": []}).usage(), None);
        assert_eq!(json!({"usage": {"total_tokens": 5}}).usage(), None);
        assert_eq!(json!("text").usage(), None);
        assert_eq!(().usage(), None);
        assert_eq!(String::from("x").usage(), None);

        let one = json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let two = json!({"usage": {"prompt_tokens": 10, "completion_tokens": 1}});
        assert_eq!(Some(one.clone()).usage(), Some(Usage::new(3, 4)));
        assert_eq!(None::<Value>.usage(), None);
        assert_eq!(Ok::<_, ()>(&one).usage(), Some(Usage::new(3, 4)));
        assert_eq!(Err::<Value, _>("boom").usage(), None);
        assert_eq!(Box::new(one.clone()).usage(), Some(Usage::new(3, 4)));
        assert_eq!(Arc::new(one.clone()).usage(), Some(Usage::new(3, 4)));
        let batch = vec![one.clone(), json!({}), two.clone()];
        assert_eq!(batch.usage(), Some(Usage::new(13, 5)));
        assert_eq!(json!([one, two]).usage(), Some(Usage::new(13, 5)));
        let cached = Usage::new(100, 1).with_cache_reads(90).with_cache_writes(5);
        assert_eq!(
            vec![cached, cached].usage(),
            Some(
                Usage::new(200, 2)
                    .with_cache_reads(180)
                    .with_cache_writes(10)
            )
        );
        assert_eq!(Vec::<Value>::new().usage(), None);
        assert_eq!(Usage::new(1, 2).usage(), Some(Usage::new(1, 2)));
    }
}

/// A response body together with the provider's rate-limit headers, so `#[rate_limited]` can
/// both settle to the body's usage and tighten its limiter to what the server reports.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{http::{RateLimitHeaders, WithHeaders}, ReportUsage};
/// use std::time::SystemTime;
///
/// let headers = [("x-ratelimit-limit-tokens", "200000"), ("x-ratelimit-remaining-tokens", "150000")];
/// let reply = WithHeaders {
///     body: serde_json::json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
///     headers: RateLimitHeaders::from_pairs(headers, SystemTime::now()),
/// };
/// assert_eq!(reply.usage().unwrap().input_tokens, 12);
/// assert_eq!(reply.rate_limit_headers().unwrap().remaining_tokens, Some(150_000));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WithHeaders<T> {
    /// The response body.
    pub body: T,
    /// The rate-limit headers that came with it.
    pub headers: RateLimitHeaders,
}

impl<T: ReportUsage> ReportUsage for WithHeaders<T> {
    fn usage(&self) -> Option<Usage> {
        self.body.usage()
    }

    fn rate_limit_headers(&self) -> Option<RateLimitHeaders> {
        Some(self.headers.clone())
    }
}
