//! Reading usage from a stream's chunks: [`StreamUsage`], and the running total it feeds.

use serde_json::Value;

use crate::answers::usage::{input_counts, usage_of};
use crate::units::cost::Usage;

/// What one chunk of a streamed response says about the whole response's usage.
///
/// Every field present is the **total so far** for the whole response, never a delta: a later
/// report replaces an earlier one field by field, and nothing is ever summed. That is how every
/// provider reports a stream's usage: OpenAI and Azure send the whole usage once, on the last
/// chunk; Anthropic sends the input on `message_start` and a cumulative output count on each
/// `message_delta`; Gemini repeats a growing `usageMetadata`. A field a chunk leaves out
/// (Anthropic's `message_delta` may carry only `output_tokens`) keeps its earlier value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamUsageUpdate {
    /// Input (prompt) tokens of the whole request, if this chunk says.
    pub input_tokens: Option<u64>,
    /// Output tokens produced so far, if this chunk says.
    pub output_tokens: Option<u64>,
    /// The part of the input read from the prompt cache, if this chunk says (see
    /// [`Usage::cache_read_input_tokens`]).
    pub cache_read_input_tokens: Option<u64>,
    /// The part of the input written to the prompt cache, if this chunk says (see
    /// [`Usage::cache_creation_input_tokens`]).
    pub cache_creation_input_tokens: Option<u64>,
}

impl StreamUsageUpdate {
    /// Both counts: the whole usage (OpenAI's final chunk, Gemini's `usageMetadata`).
    pub fn total(usage: Usage) -> Self {
        StreamUsageUpdate {
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            cache_read_input_tokens: Some(usage.cache_read_input_tokens),
            cache_creation_input_tokens: Some(usage.cache_creation_input_tokens),
        }
    }

    /// Only the output produced so far (Anthropic's `message_delta`).
    pub fn output_so_far(output_tokens: u64) -> Self {
        StreamUsageUpdate {
            output_tokens: Some(output_tokens),
            ..StreamUsageUpdate::default()
        }
    }
}

/// How a chunk of a streamed response reports the tokens the whole response used.
///
/// A `#[rate_limited(model = .., stream)]` function's stream yields `Result<Chunk, E>`; the
/// limiter reads every `Ok` chunk through this trait and settles the reservation with the last
/// value of each count when the stream ends (see [`StreamUsageUpdate`] for why the last and
/// not the sum). Implemented for `serde_json::Value` (OpenAI, Azure, Anthropic and Gemini
/// stream events, parsed from each SSE `data:` line) and, with the `async-openai` feature, for
/// its `CreateChatCompletionStreamResponse`. For a chunk type of your own:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::stream::{StreamUsage, StreamUsageUpdate};
/// use ratelimited::Usage;
///
/// struct Chunk { text: String, usage: Option<(u64, u64)> }
///
/// impl StreamUsage for Chunk {
///     fn usage(&self) -> Option<StreamUsageUpdate> {
///         let (input, output) = self.usage?;
///         Some(StreamUsageUpdate::total(Usage::new(input, output)))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not report the usage of a streamed response",
    label = "the limiter reads each chunk's usage to settle the stream's reservation",
    note = "implement `ratelimited::stream::StreamUsage` for `{Self}`: return the usage totals \
            the chunk carries (`StreamUsageUpdate::total(..)`), or `None` when it carries none"
)]
pub trait StreamUsage {
    /// The usage this chunk reports, if any.
    fn usage(&self) -> Option<StreamUsageUpdate>;
}

impl<T: StreamUsage + ?Sized> StreamUsage for &T {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        (**self).usage()
    }
}

impl<T: StreamUsage + ?Sized> StreamUsage for Box<T> {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        (**self).usage()
    }
}

/// One stream event as JSON, from whichever provider:
///
/// | provider | event | read as |
/// |---|---|---|
/// | OpenAI, Azure | last chunk, `usage: {prompt_tokens, completion_tokens}` (with `stream_options.include_usage`) | the whole usage |
/// | Anthropic | `message_start`, `message.usage: {input_tokens, output_tokens}` | the whole usage so far |
/// | Anthropic | `message_delta`, `usage: {output_tokens}` (cumulative; `input_tokens` in newer API versions) | the counts it has |
/// | Gemini | `usageMetadata: {promptTokenCount, candidatesTokenCount, ..}` | the whole usage so far |
///
/// Input counts follow [`ReportUsage`](crate::ReportUsage) for `Value`: the whole prompt, with
/// its cache reads and writes (OpenAI's `prompt_tokens_details`, Anthropic's
/// `cache_read_input_tokens` and `cache_creation_input_tokens` on `message_start`, repeated on
/// `message_delta` by newer API versions, Gemini's `cachedContentTokenCount`). Chunks without usage (`"usage": null`, content deltas,
/// `ping`) report `None`.
impl StreamUsage for Value {
    fn usage(&self) -> Option<StreamUsageUpdate> {
        if let Some(usage @ Value::Object(_)) = self.get("usage") {
            return openai_or_anthropic(usage);
        }
        if let Some(usage @ Value::Object(_)) = self.get("message").and_then(|m| m.get("usage")) {
            return openai_or_anthropic(usage);
        }
        if self.get("usageMetadata").is_some() {
            return crate::ReportUsage::usage(self).map(StreamUsageUpdate::total);
        }
        None
    }
}

fn openai_or_anthropic(usage: &Value) -> Option<StreamUsageUpdate> {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    let input = input_counts(usage);
    let output = count("completion_tokens").or_else(|| count("output_tokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(StreamUsageUpdate {
        input_tokens: input.map(|(whole, _, _)| whole),
        output_tokens: output,
        cache_read_input_tokens: input.map(|(_, read, _)| read),
        cache_creation_input_tokens: input.map(|(_, _, creation)| creation),
    })
}

/// The usage a stream has reported so far: the last value of each count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UsageSoFar {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl UsageSoFar {
    /// Takes in one chunk's report: each count it carries replaces the earlier one.
    pub(crate) fn record(&mut self, update: StreamUsageUpdate) {
        self.input_tokens = update.input_tokens.or(self.input_tokens);
        self.output_tokens = update.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = update
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = update
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    /// The usage to settle with, once any count was reported (a missing one counts 0: a
    /// response that reported output but no input used no more input than it said).
    pub(crate) fn usage(&self) -> Option<Usage> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        let input = self.input_tokens.unwrap_or(0);
        Some(usage_of(
            (
                input,
                self.cache_read_input_tokens.unwrap_or(0),
                self.cache_creation_input_tokens.unwrap_or(0),
            ),
            self.output_tokens.unwrap_or(0),
        ))
    }
}

/// A request that can ask the provider to report a stream's usage.
///
/// OpenAI and Azure report a stream's usage only when the request says
/// `"stream_options": {"include_usage": true}`; without it the stream ends with no usage and
/// the whole reservation is kept. `#[rate_limited]` never changes the arguments it is given
/// (they are yours, often borrowed immutably, and the body may have built its request
/// already), so call this on the request before sending it. It leaves an explicit
/// `include_usage` the caller set alone.
pub trait IncludeStreamUsage {
    /// Asks for the usage chunk unless the request already says whether it wants one.
    fn include_stream_usage(&mut self);
}

/// Sets `stream_options.include_usage` to `true` on a JSON request object, unless it is set.
/// Anthropic and Gemini report stream usage unasked, and ignore nothing here: call it only on
/// OpenAI-compatible bodies.
impl IncludeStreamUsage for Value {
    fn include_stream_usage(&mut self) {
        let Value::Object(request) = self else {
            return;
        };
        let options = request
            .entry("stream_options")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(options) = options {
            options.entry("include_usage").or_insert(Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settle(chunks: &[Value]) -> Option<Usage> {
        let mut so_far = UsageSoFar::default();
        for update in chunks.iter().filter_map(StreamUsage::usage) {
            so_far.record(update);
        }
        so_far.usage()
    }

    #[test]
    fn openai_final_chunk() {
        let chunks = [
            json!({"object": "chat.completion.chunk", "choices": [{"delta": {"content": "Hi"}}], "usage": null}),
            json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}}),
        ];
        assert_eq!(chunks[0].usage(), None);
        assert_eq!(settle(&chunks), Some(Usage::new(12, 30)));
    }

    #[test]
    fn anthropic_cumulative_deltas_take_the_last_value() {
        let chunks = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 25, "cache_creation_input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hello"}}),
            json!({"type": "message_delta", "usage": {"output_tokens": 10}}),
            json!({"type": "message_delta", "usage": {"output_tokens": 15}}),
            json!({"type": "message_stop"}),
        ];
        assert_eq!(
            settle(&chunks),
            Some(Usage::new(30, 15).with_cache_writes(5))
        );
    }

    #[test]
    fn anthropic_cache_reads_on_message_start_survive_output_only_deltas() {
        let chunks = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 900, "output_tokens": 1}}}),
            json!({"type": "message_delta", "usage": {"output_tokens": 40}}),
            // Newer API versions repeat the whole usage on the last delta.
            json!({"type": "message_delta", "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 900, "output_tokens": 60}}),
        ];
        let expected = Usage::new(1_000, 60).with_cache_reads(900);
        assert_eq!(settle(&chunks), Some(expected));
        assert_eq!(
            settle(&chunks[..2]),
            Some(Usage::new(1_000, 40).with_cache_reads(900))
        );
    }

    #[test]
    fn openai_and_gemini_cached_tokens_in_streams() {
        let openai = [
            json!({"choices": [], "usage": {"prompt_tokens": 2000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1792}}}),
        ];
        assert_eq!(
            settle(&openai),
            Some(Usage::new(2000, 5).with_cache_reads(1792))
        );
        let gemini = [
            json!({"usageMetadata": {"promptTokenCount": 5000, "cachedContentTokenCount": 4096, "candidatesTokenCount": 7}}),
        ];
        assert_eq!(
            settle(&gemini),
            Some(Usage::new(5000, 7).with_cache_reads(4096))
        );
    }

    #[test]
    fn gemini_usage_metadata_on_the_last_chunk() {
        let chunks = [
            json!({"candidates": [], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2}}),
            json!({"candidates": [], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 20, "thoughtsTokenCount": 4}}),
        ];
        assert_eq!(settle(&chunks), Some(Usage::new(8, 24)));
    }

    #[test]
    fn no_usage_at_all() {
        assert_eq!(settle(&[json!({"choices": []}), json!("ping")]), None);
    }

    #[test]
    fn include_usage_is_added_unless_set() {
        let mut request = json!({"model": "gpt-4o-mini", "stream": true});
        request.include_stream_usage();
        assert_eq!(request["stream_options"], json!({"include_usage": true}));

        let mut declined = json!({"stream_options": {"include_usage": false}});
        declined.include_stream_usage();
        assert_eq!(declined["stream_options"], json!({"include_usage": false}));
    }
}
