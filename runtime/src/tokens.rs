//! Token estimation: how many prompt tokens a request's arguments will cost, before it is sent.
//!
//! OpenAI models are counted exactly with their tiktoken encoding (via `tiktoken-rs`); Anthropic
//! and Gemini tokenizers are not public, so their models get a deliberately high approximation
//! (see [`Encoding::Approximate`]). Estimates feed a reservation that is settled to the real
//! usage after the call, so a small error costs a little throughput, never correctness; erring
//! high is the safe direction, because an under-estimate lets concurrent bursts overshoot.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Text at least this long (in bytes) is counted on tokio's blocking pool by
/// [`count_tokens_async`] instead of on the executor.
///
/// o200k counts ordinary text at roughly 7-20 MB/s (release build), so 64 KiB costs 3-10 ms of
/// CPU: about the most a task should hold an executor thread for.
pub const ASYNC_COUNT_THRESHOLD: usize = 64 * 1024;

/// How a model's text is turned into tokens for estimates.
///
/// ```
/// use ratelimited_runtime::{count_tokens, encoding_for_model, Encoding};
///
/// assert_eq!(encoding_for_model("gpt-4o-mini-2024-07-18"), Encoding::O200kBase);
/// assert_eq!(encoding_for_model("gpt-3.5-turbo"), Encoding::Cl100kBase);
/// assert_eq!(count_tokens(Encoding::O200kBase, "Hello, world!"), 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `o200k_base`: GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o1, o3, o4 and their fine-tunes.
    O200kBase,
    /// `cl100k_base`: GPT-4, GPT-4 Turbo, GPT-3.5 Turbo, `text-embedding-*`.
    Cl100kBase,
    /// An approximation for models whose tokenizer is not public: the `o200k_base` count times
    /// `o200k_percent / 100`, rounded up.
    ///
    /// Scaling a real BPE count tracks content type (prose, code, JSON, CJK) far better than a
    /// characters-per-token rule: on the fixture below, `chars / 3.2` would under-count Chinese
    /// text 4.6-fold. The factors ([`Encoding::ANTHROPIC`], [`Encoding::ANTHROPIC_OPUS_4_7`],
    /// [`Encoding::GEMINI`]) are chosen to over-estimate, which is the safe side for rate limits.
    ///
    /// **What was measured.** No current Claude or Gemini tokenizer is available offline, so the
    /// exact error against the real thing is unknown. The `tests` module holds an 8-text fixture
    /// (4,088 characters: English prose, technical English, Rust, Python, a JSON request,
    /// German, Chinese, log lines), counted with
    /// - Anthropic's *legacy* Claude tokenizer (the 65k-vocabulary BPE Anthropic published for
    ///   Claude 1/2, via the `claude-tokenizer` 0.3.0 crate, run outside this crate): it gives
    ///   0.98-1.38× the o200k count per text, 1.12× overall. [`Encoding::ANTHROPIC`] (140 %)
    ///   is **1.02-1.43× that count per text (1.25× overall): it never under-estimated**;
    ///   the test asserts this range on every fixture text.
    /// - Third-party measurements of Claude 3.5-4.6 (through Anthropic's token-counting API) put
    ///   it at 1.16× GPT-4o's o200k count for English, 1.21× for math and 1.30× for Python:
    ///   140 % is 1.08-1.21× those. Opus 4.7's tokenizer was measured at 1.0-1.47× Opus 4.6's
    ///   (English prose 1.45×, code 1.13-1.33×, CJK 1.0×), about 1.7× o200k for English; its 180 %
    ///   covers that but not pathological inputs (long runs of one letter measured 3×).
    /// - Gemini: Google documents "about 4 characters per token"; [`Encoding::GEMINI`] (125 %)
    ///   gives 1.07-1.47× that rule on the fixture's prose, code and JSON, 2.3× on the log lines
    ///   and 4.8× on Chinese (where the rule does not apply). Not measured against Gemini's own
    ///   tokenizer.
    ///
    /// These factors are dated defaults (2026-11): for exact numbers pass
    /// `#[rate_limited(tokens = ...)]` (for example from the provider's token-counting endpoint).
    Approximate {
        /// The multiplier applied to the `o200k_base` count, in percent.
        o200k_percent: u32,
    },
}

impl Encoding {
    /// Anthropic Claude models up to 4.6: o200k × 1.40 (see [`Encoding::Approximate`]).
    pub const ANTHROPIC: Encoding = Encoding::Approximate { o200k_percent: 140 };
    /// Claude Opus 4.7, whose newer tokenizer produces more tokens: o200k × 1.80.
    pub const ANTHROPIC_OPUS_4_7: Encoding = Encoding::Approximate { o200k_percent: 180 };
    /// Google Gemini models: o200k × 1.25.
    pub const GEMINI: Encoding = Encoding::Approximate { o200k_percent: 125 };

    /// True for the real OpenAI encodings, false for approximations.
    pub const fn is_exact(self) -> bool {
        !matches!(self, Encoding::Approximate { .. })
    }

    /// Builds this encoding's tokenizer now, if it is not built yet.
    ///
    /// Building costs 0.2-0.3 s of CPU and about 45 MiB for o200k (20 MiB for cl100k); it
    /// happens once per process. Call this (or [`Encoding::warm_in_background`]) at start-up so
    /// the first request doesn't pay it.
    pub fn warm(self) {
        bpe(self);
    }

    /// Builds this encoding's tokenizer on a new background thread and returns at once.
    ///
    /// Joining the handle is optional; a count that arrives first simply waits for the build
    /// to finish instead of starting a second one. `None` if the OS refused a thread: the
    /// tokenizer is then built on first use.
    pub fn warm_in_background(self) -> Option<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ratelimited-tokenizer-warm".into())
            .spawn(move || self.warm())
            .ok()
    }

    /// True once this encoding's tokenizer has been built in this process.
    pub fn is_warm(self) -> bool {
        ready_flag(self).load(Ordering::Acquire)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::O200kBase => f.write_str("o200k_base"),
            Encoding::Cl100kBase => f.write_str("cl100k_base"),
            Encoding::Approximate { o200k_percent } => {
                write!(f, "o200k_base x {o200k_percent}% (approximation)")
            }
        }
    }
}

static O200K_READY: AtomicBool = AtomicBool::new(false);
static CL100K_READY: AtomicBool = AtomicBool::new(false);

fn ready_flag(encoding: Encoding) -> &'static AtomicBool {
    match encoding {
        Encoding::Cl100kBase => &CL100K_READY,
        Encoding::O200kBase | Encoding::Approximate { .. } => &O200K_READY,
    }
}

/// The shared tokenizer behind `encoding` (built on first use).
fn bpe(encoding: Encoding) -> &'static CoreBPE {
    let bpe = match encoding {
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Encoding::O200kBase | Encoding::Approximate { .. } => tiktoken_rs::o200k_base_singleton(),
    };
    ready_flag(encoding).store(true, Ordering::Release);
    bpe
}

/// Applies an approximation's factor to a raw o200k count.
fn scale(encoding: Encoding, raw: u64) -> u64 {
    match encoding {
        Encoding::Approximate { o200k_percent } => {
            raw.saturating_mul(u64::from(o200k_percent)).div_ceil(100)
        }
        Encoding::O200kBase | Encoding::Cl100kBase => raw,
    }
}

fn raw_count(bpe: &CoreBPE, text: &str) -> u64 {
    if text.is_empty() {
        0
    } else {
        bpe.count_ordinary(text) as u64
    }
}

/// The encoding to estimate `model`'s tokens with.
///
/// Case-insensitive; a provider path (`openai/gpt-4o`, `models/gemini-2.5-pro`), an `ft:`
/// fine-tune prefix and Bedrock/Vertex decorations are ignored.
///
/// | model id | encoding |
/// |---|---|
/// | `gpt-4o*`, `chatgpt-4o*`, `gpt-4.1*`, `gpt-4.5*`, `gpt-5*`, `gpt-oss*`, `o1*`, `o3*`, `o4*`, `codex-*` | [`Encoding::O200kBase`] |
/// | `gpt-4*`, `gpt-3.5*` (Azure `gpt-35*`), `text-embedding-*` | [`Encoding::Cl100kBase`] |
/// | `claude-opus-4-7*` | [`Encoding::ANTHROPIC_OPUS_4_7`] |
/// | any other id containing `claude` | [`Encoding::ANTHROPIC`] |
/// | `gemini*` | [`Encoding::GEMINI`] |
/// | anything else | [`Encoding::O200kBase`] |
pub fn encoding_for_model(model: &str) -> Encoding {
    const O200K: &[&str] = &[
        "gpt-4o",
        "chatgpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "gpt-oss",
        "o1",
        "o3",
        "o4",
        "codex-",
    ];
    const CL100K: &[&str] = &["gpt-4", "gpt-3.5", "gpt-35", "text-embedding-"];

    let lower = model.trim().to_ascii_lowercase();
    let id = lower.strip_prefix("ft:").unwrap_or(&lower);
    let id = id.rsplit_once('/').map_or(id, |(_, last)| last);
    if id.contains("claude") {
        return if id.contains("claude-opus-4-7") || id.contains("claude-opus-4.7") {
            Encoding::ANTHROPIC_OPUS_4_7
        } else {
            Encoding::ANTHROPIC
        };
    }
    if id.starts_with("gemini") {
        return Encoding::GEMINI;
    }
    if O200K.iter().any(|p| id.starts_with(p)) {
        return Encoding::O200kBase;
    }
    if CL100K.iter().any(|p| id.starts_with(p)) {
        return Encoding::Cl100kBase;
    }
    Encoding::O200kBase
}

/// The tokens `text` encodes to: exactly `encode_ordinary(text).len()` for the OpenAI
/// encodings (special-token text such as `<|endoftext|>` counts as ordinary text), the scaled
/// o200k count for approximations.
///
/// Builds the tokenizer on first use (0.2-0.3 s); see [`Encoding::warm`]. Costs roughly
/// 50-150 µs per KB; for large texts inside async code use [`count_tokens_async`].
pub fn count_tokens(encoding: Encoding, text: &str) -> u64 {
    scale(encoding, raw_count(bpe(encoding), text))
}

/// [`count_tokens`] that never stalls the async executor.
///
/// Text of [`ASYNC_COUNT_THRESHOLD`] bytes or more, and any text while the tokenizer is not yet
/// built, is copied and counted on tokio's blocking pool (`spawn_blocking`); shorter text is
/// counted inline. Outside a tokio runtime it counts inline.
///
/// Under `#[tokio::test(start_paused = true)]` a blocking task in flight holds back the paused
/// clock's auto-advance until it finishes; only large or first-ever counts take this path.
pub async fn count_tokens_async(encoding: Encoding, text: &str) -> u64 {
    if text.len() < ASYNC_COUNT_THRESHOLD && encoding.is_warm() {
        return count_tokens(encoding, text);
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return count_tokens(encoding, text);
    };
    let owned = text.to_owned();
    match runtime
        .spawn_blocking(move || count_tokens(encoding, &owned))
        .await
    {
        Ok(count) => count,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // The runtime is shutting down: finish the work here.
        Err(_) => count_tokens(encoding, text),
    }
}

/// One chat message, for [`count_chat`] and [`EstimateTokens`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
    /// The optional participant name.
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message with a role and content and no name.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            name: None,
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::new("assistant", content)
    }

    /// The same message with a participant name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Per-message framing tokens in OpenAI's chat format (gpt-3.5-turbo-0613 and later).
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra token when a message has a `name`.
const TOKENS_PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;

/// The prompt tokens of a chat request with these messages, using OpenAI's formula (the
/// cookbook's `num_tokens_from_messages`): 3 per message plus its role, content and name, 1 more
/// per name, and 3 for the reply priming.
///
/// Tool definitions, images and `max_tokens` are not included. For approximations the whole
/// o200k total (overhead included) is scaled once.
///
/// ```
/// use ratelimited_runtime::{count_chat, count_tokens, ChatMessage, Encoding};
///
/// let enc = Encoding::O200kBase;
/// let messages = [ChatMessage::user("Hello!")];
/// assert_eq!(
///     count_chat(enc, &messages),
///     3 + count_tokens(enc, "user") + count_tokens(enc, "Hello!") + 3
/// );
/// ```
pub fn count_chat(encoding: Encoding, messages: &[ChatMessage]) -> u64 {
    let bpe = bpe(encoding);
    let raw = messages.iter().fold(REPLY_PRIMING, |total, m| {
        let name = m
            .name
            .as_deref()
            .map_or(0, |n| TOKENS_PER_NAME + raw_count(bpe, n));
        total
            .saturating_add(TOKENS_PER_MESSAGE)
            .saturating_add(raw_count(bpe, &m.role))
            .saturating_add(raw_count(bpe, &m.content))
            .saturating_add(name)
    });
    scale(encoding, raw)
}

/// How an argument's type estimates the prompt tokens it contributes to a request.
///
/// The `#[rate_limited]` expansion sums this over the function's arguments (arguments whose
/// types don't implement it count zero; `#[rate_limited(tokens = ...)]` replaces the sum).
/// Implemented for `str`, `String`, `Cow<str>`, [`ChatMessage`], `serde_json::Value`, and
/// through `&T`, `&mut T`, `Box<T>`, `Rc<T>`, `Arc<T>`, `Option<T>`, slices, arrays, `Vec<T>`
/// and tuples of up to four. Integers and other non-text types don't implement it: they are
/// not prompt text.
///
/// For your own request type, count the text it sends:
///
/// ```
/// use ratelimited_runtime::{count_tokens, Encoding, EstimateTokens};
///
/// struct Summarize { document: String, instructions: String, max_words: u32 }
///
/// impl EstimateTokens for Summarize {
///     fn estimate_tokens(&self, encoding: Encoding) -> u64 {
///         // Two strings, as the request sends them; `max_words` is not prompt text.
///         self.document.estimate_tokens(encoding) + count_tokens(encoding, &self.instructions)
///     }
/// }
/// # let s = Summarize { document: "a b".into(), instructions: "c".into(), max_words: 5 };
/// # assert!(s.estimate_tokens(Encoding::O200kBase) >= 3);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no token estimate",
    label = "the limiter cannot estimate the prompt tokens of this type",
    note = "implement `ratelimited::EstimateTokens` for it (count its prompt text with \
            `ratelimited::count_tokens`), or give the estimate yourself with \
            `#[rate_limited(tokens = ...)]`"
)]
pub trait EstimateTokens {
    /// The prompt tokens this value adds to a request, in `encoding`.
    fn estimate_tokens(&self, encoding: Encoding) -> u64;

    /// The estimate for a slice of values; the sum of the items unless a sequence costs more
    /// than its parts ([`ChatMessage`] overrides it so a conversation gets the reply priming
    /// once, as [`count_chat`] does). Slices, arrays and `Vec`s use it.
    fn estimate_tokens_of_slice(items: &[Self], encoding: Encoding) -> u64
    where
        Self: Sized,
    {
        items.iter().fold(0, |sum, item| {
            sum.saturating_add(item.estimate_tokens(encoding))
        })
    }

    /// Bytes of text the estimate will tokenize, if cheaply known (0 = unknown or small).
    ///
    /// `#[rate_limited]` uses it to count very large prompts off the async executor.
    fn text_len(&self) -> usize {
        0
    }
}

impl EstimateTokens for str {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }

    fn text_len(&self) -> usize {
        self.len()
    }
}

impl EstimateTokens for String {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }

    fn text_len(&self) -> usize {
        self.len()
    }
}

impl EstimateTokens for Cow<'_, str> {
    fn text_len(&self) -> usize {
        self.len()
    }

    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }
}

macro_rules! delegate_estimate {
    ($($wrapper:ty),*) => {$(
        impl<T: EstimateTokens + ?Sized> EstimateTokens for $wrapper {
            fn estimate_tokens(&self, encoding: Encoding) -> u64 {
                (**self).estimate_tokens(encoding)
            }

            fn text_len(&self) -> usize {
                (**self).text_len()
            }
        }
    )*};
}
delegate_estimate!(&T, &mut T, Box<T>, Rc<T>, Arc<T>);

/// `None` adds nothing.
impl<T: EstimateTokens> EstimateTokens for Option<T> {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        self.as_ref().map_or(0, |v| v.estimate_tokens(encoding))
    }

    fn text_len(&self) -> usize {
        self.as_ref().map_or(0, EstimateTokens::text_len)
    }
}

impl<T: EstimateTokens> EstimateTokens for [T] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

impl<T: EstimateTokens, const N: usize> EstimateTokens for [T; N] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

impl<T: EstimateTokens> EstimateTokens for Vec<T> {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

macro_rules! tuple_estimate {
    ($($name:ident),+) => {
        impl<$($name: EstimateTokens),+> EstimateTokens for ($($name,)+) {
            fn estimate_tokens(&self, encoding: Encoding) -> u64 {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                0u64 $(.saturating_add($name.estimate_tokens(encoding)))+
            }
        }
    };
}
tuple_estimate!(A);
tuple_estimate!(A, B);
tuple_estimate!(A, B, C);
tuple_estimate!(A, B, C, D);

/// A single message is a one-message conversation: [`count_chat`] of it, reply priming included.
impl EstimateTokens for ChatMessage {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_chat(encoding, std::slice::from_ref(self))
    }

    fn estimate_tokens_of_slice(items: &[Self], encoding: Encoding) -> u64 {
        count_chat(encoding, items)
    }

    fn text_len(&self) -> usize {
        self.content.len()
    }
}

/// A JSON request body (or any part of one).
///
/// - Every string value is counted, at any depth; object keys are not (they are structure, not
///   prompt text); numbers, booleans and `null` count zero.
/// - Not counted either, because they are not prompt text: the value of a `model` key, the value
///   of a `data` key (Anthropic base64 image/document sources) and any string starting with
///   `data:` (inline image URLs). Providers charge images by size, not by characters; pass
///   `tokens = ...` if your requests carry many.
/// - An object with a `messages` array (an OpenAI or Anthropic chat request) also gets
///   [`count_chat`]'s framing: 3 per message, 1 per message with a `name`, 3 for the reply
///   priming. Content given as an array of parts (`[{"type":"text","text":..}]`) is counted
///   through its strings like everything else.
///
/// So `{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}` estimates exactly
/// as `count_chat` of the same message. For approximations the total is scaled once.
impl EstimateTokens for Value {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        scale(encoding, raw_json(bpe(encoding), self, None))
    }

    fn text_len(&self) -> usize {
        match self {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(EstimateTokens::text_len).sum(),
            Value::Object(map) => map.values().map(EstimateTokens::text_len).sum(),
            _ => 0,
        }
    }
}

fn raw_json(bpe: &CoreBPE, value: &Value, key: Option<&str>) -> u64 {
    match value {
        Value::String(text) => {
            if matches!(key, Some("model" | "data")) || text.starts_with("data:") {
                0
            } else {
                raw_count(bpe, text)
            }
        }
        Value::Array(items) => items
            .iter()
            .fold(0, |sum, item| sum.saturating_add(raw_json(bpe, item, key))),
        Value::Object(map) => {
            let mut total = map.iter().fold(0u64, |sum, (k, v)| {
                sum.saturating_add(raw_json(bpe, v, Some(k)))
            });
            if let Some(Value::Array(messages)) = map.get("messages") {
                let names = messages.iter().filter(|m| m.get("name").is_some()).count() as u64;
                total = total
                    .saturating_add(TOKENS_PER_MESSAGE * messages.len() as u64)
                    .saturating_add(TOKENS_PER_NAME * names)
                    .saturating_add(REPLY_PRIMING);
            }
            total
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The approximation fixture: eight texts of different kinds, 4,088 characters in all.
    const FIXTURES: &[(&str, &str)] = &[
        (
            "english prose",
            "The harbour master kept a ledger of every ship that came in after dark. Most nights the \
             entries were short: a fishing boat late with its catch, a ferry that had waited for a \
             doctor, once a yacht whose owner insisted on paying the mooring fee in foreign coins. \
             But in the winter of that year the ledger grew long. Cargo vessels arrived in twos and \
             threes, their crews tired and unwilling to talk, and the warehouses along the quay filled \
             with crates that nobody seemed to collect. The master wrote it all down in the same \
             careful hand, noting tonnage, flags and the hour of arrival, because he believed that a \
             record kept honestly would one day explain itself. When the inspectors finally came, in \
             March, they read the ledger from the first page to the last without a word, and then \
             asked him why he had never reported any of it. He told them the truth: nobody had ever \
             asked, and it had not occurred to him that a list of facts could be a warning.",
        ),
        (
            "technical english",
            "Rate limits are enforced per organization and per project. Each limit is a bucket that \
             refills continuously: a 30,000 tokens-per-minute limit regains 500 tokens every second. \
             Before a request is sent, the client reserves its estimated prompt tokens plus \
             max_tokens times n; after the response arrives, it settles the reservation against the \
             usage the server reported (prompt_tokens, completion_tokens). A 429 response carries \
             retry-after-ms or retry-after, and the x-ratelimit-reset-tokens header uses Go duration \
             syntax such as 6m0s or 46.001s.",
        ),
        (
            "rust code",
            "use std::collections::HashMap;\n\n/// Counts words, case-insensitively.\npub fn word_counts(text: &str) -> HashMap<String, usize> {\n    let mut counts = HashMap::new();\n    for word in text.split_whitespace() {\n        let word = word\n            .trim_matches(|c: char| !c.is_alphanumeric())\n            .to_lowercase();\n        if word.is_empty() {\n            continue;\n        }\n        *counts.entry(word).or_insert(0) += 1;\n    }\n    counts\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn counts_repeated_words() {\n        let counts = word_counts(\"a b, A! c\");\n        assert_eq!(counts[\"a\"], 2);\n        assert_eq!(counts.get(\"d\"), None);\n    }\n}\n",
        ),
        (
            "python code",
            "import asyncio\nimport json\n\n\nasync def fetch_all(client, prompts, limit=8):\n    sem = asyncio.Semaphore(limit)\n    results = [None] * len(prompts)\n\n    async def one(i, prompt):\n        async with sem:\n            resp = await client.post(\"/v1/chat/completions\", json={\n                \"model\": \"gpt-4o-mini\",\n                \"messages\": [{\"role\": \"user\", \"content\": prompt}],\n                \"max_tokens\": 256,\n            })\n            results[i] = resp.json()[\"choices\"][0][\"message\"][\"content\"]\n\n    await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))\n    return results\n",
        ),
        (
            "json request",
            "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"system\":\"You are a terse assistant that answers in one sentence.\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise the attached incident report for the on-call channel.\"},{\"role\":\"assistant\",\"content\":\"Sure, please paste the report.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"2026-03-14T02:17:09Z api-gw-3 upstream timeout after 30000 ms; 412 requests failed; error budget burn 2.4x; rollback of build 8f3c2a1 completed at 02:41Z.\"}]}],\"temperature\":0.2}",
        ),
        (
            "german prose",
            "Am Morgen nach dem Sturm lag der Strand voller Treibholz, und die Kinder aus dem Dorf \
             suchten zwischen den Ästen nach Muscheln und verlorenen Schätzen. Die Fischer dagegen \
             zählten schweigend ihre beschädigten Netze und rechneten aus, wie viele Wochen die \
             Reparatur dauern würde. Nur die alte Bäckerin öffnete ihren Laden pünktlich um sechs \
             Uhr, als wäre nichts geschehen.",
        ),
        (
            "chinese prose",
            "清晨的集市总是最热闹的。卖菜的老人把新鲜的青菜摆得整整齐齐，旁边的小摊上飘来豆浆和油条的香味。\
             孩子们背着书包匆匆走过，偶尔停下来看一眼笼子里的小鸟。到了中午，人群渐渐散去，只剩下几位摊主在阴凉处聊天，\
             讨论着明天的天气和最近上涨的菜价。",
        ),
        (
            "log lines",
            "2026-03-14T02:17:09.331Z WARN  upstream=api-gw-3 status=504 latency_ms=30001 req_id=7c9e6679-7425-40de-944b-e07fc1f90ae7\n2026-03-14T02:17:09.874Z ERROR upstream=api-gw-3 status=502 latency_ms=12 req_id=16fd2706-8baf-433b-82eb-8c7fada847da\n2026-03-14T02:17:10.002Z INFO  retry attempt=2 delay_ms=840 bucket=tokens remaining=1843 reset=6m0s\n",
        ),
    ];

    /// `o200k_base` counts of [`FIXTURES`] (tiktoken-rs 0.12.1); the test re-checks them so an
    /// edited fixture cannot silently void the measurement below.
    const FIXTURE_O200K: [u64; 8] = [202, 118, 176, 143, 149, 87, 111, 154];
    /// `cl100k_base` counts of [`FIXTURES`] (tiktoken-rs 0.12.1).
    const FIXTURE_CL100K: [u64; 8] = [203, 118, 172, 144, 148, 107, 168, 154];
    /// Counts of [`FIXTURES`] by Anthropic's legacy Claude tokenizer (65k-vocabulary BPE,
    /// `claude-tokenizer` 0.3.0 on `tokenizers` 0.20), measured in a scratch crate outside this
    /// workspace: the only Claude tokenizer that can be run offline.
    const FIXTURE_LEGACY_CLAUDE: [u64; 8] = [208, 124, 206, 158, 146, 120, 153, 161];

    #[test]
    fn counts_equal_tiktoken_encode_ordinary() {
        let texts = [
            "",
            "Hello, world!",
            "  leading and trailing spaces  ",
            "naïve café, 東京, 🦀 emoji",
            "<|endoftext|> is ordinary text here",
            "fn main() { println!(\"{}\", 1 + 2); }\n",
        ];
        for (encoding, bpe) in [
            (Encoding::O200kBase, tiktoken_rs::o200k_base_singleton()),
            (Encoding::Cl100kBase, tiktoken_rs::cl100k_base_singleton()),
        ] {
            for text in texts
                .iter()
                .copied()
                .chain(FIXTURES.iter().map(|(_, t)| *t))
            {
                assert_eq!(
                    count_tokens(encoding, text),
                    bpe.encode_ordinary(text).len() as u64,
                    "{encoding}: {text:?}"
                );
            }
        }
        assert_eq!(count_tokens(Encoding::O200kBase, "Hello, world!"), 4);
    }

    #[test]
    fn fixture_counts_are_the_measured_ones() {
        for (i, (name, text)) in FIXTURES.iter().enumerate() {
            assert_eq!(
                count_tokens(Encoding::O200kBase, text),
                FIXTURE_O200K[i],
                "{name}"
            );
            assert_eq!(
                count_tokens(Encoding::Cl100kBase, text),
                FIXTURE_CL100K[i],
                "{name}"
            );
        }
    }

    /// The measurement documented on [`Encoding::Approximate`]: run with `--nocapture` to see
    /// the table.
    #[test]
    fn anthropic_approximation_error_on_fixture() {
        let mut approx_total = 0;
        let mut reference_total = 0;
        eprintln!(
            "{:<18} {:>6} {:>6} {:>7} {:>6}",
            "fixture", "o200k", "claude", "approx", "ratio"
        );
        for (i, (name, text)) in FIXTURES.iter().enumerate() {
            let approx = count_tokens(Encoding::ANTHROPIC, text);
            let reference = FIXTURE_LEGACY_CLAUDE[i];
            let ratio = approx as f64 / reference as f64;
            eprintln!(
                "{name:<18} {:>6} {reference:>6} {approx:>7} {ratio:>6.3}",
                FIXTURE_O200K[i]
            );
            // Documented bound: 1.02-1.43x the legacy Claude count on every text.
            assert!((1.0..=1.45).contains(&ratio), "{name}: {ratio:.3}");
            approx_total += approx;
            reference_total += reference;
        }
        let overall = approx_total as f64 / reference_total as f64;
        eprintln!("overall {approx_total} / {reference_total} = {overall:.3}");
        assert!((1.2..=1.3).contains(&overall), "overall {overall:.3}");
    }

    #[test]
    fn gemini_approximation_against_four_chars_per_token() {
        for (name, text) in FIXTURES {
            let approx = count_tokens(Encoding::GEMINI, text) as f64;
            let rule = text.chars().count() as f64 / 4.0;
            let ratio = approx / rule;
            eprintln!("{name:<18} gemini approx / (chars/4) = {ratio:.3}");
            assert!(ratio >= 1.05, "{name}: {ratio:.3}");
            if *name != "chinese prose" {
                assert!(ratio <= 2.3, "{name}: {ratio:.3}");
            }
        }
    }

    #[test]
    fn approximation_scales_and_rounds_up() {
        let text = FIXTURES[0].1;
        assert_eq!(
            count_tokens(Encoding::ANTHROPIC, text),
            (202 * 140_u64).div_ceil(100)
        );
        assert_eq!(count_tokens(Encoding::ANTHROPIC, text), 283);
        assert_eq!(count_tokens(Encoding::ANTHROPIC_OPUS_4_7, text), 364);
        assert_eq!(count_tokens(Encoding::GEMINI, text), 253);
        assert_eq!(count_tokens(Encoding::ANTHROPIC, ""), 0);
        assert_eq!(
            count_tokens(Encoding::Approximate { o200k_percent: 100 }, text),
            202
        );
    }

    #[test]
    fn model_encodings() {
        let cases = [
            ("gpt-4o", Encoding::O200kBase),
            ("gpt-4o-mini-2024-07-18", Encoding::O200kBase),
            ("GPT-4o", Encoding::O200kBase),
            ("chatgpt-4o-latest", Encoding::O200kBase),
            ("gpt-4.1-nano", Encoding::O200kBase),
            ("gpt-5", Encoding::O200kBase),
            ("gpt-5-mini", Encoding::O200kBase),
            ("o1", Encoding::O200kBase),
            ("o3-mini", Encoding::O200kBase),
            ("o4-mini-deep-research", Encoding::O200kBase),
            ("ft:gpt-4o-mini-2024-07-18:acme::9abc", Encoding::O200kBase),
            ("openai/gpt-4o", Encoding::O200kBase),
            ("gpt-4", Encoding::Cl100kBase),
            ("gpt-4-0613", Encoding::Cl100kBase),
            ("gpt-4-turbo-2024-04-09", Encoding::Cl100kBase),
            ("gpt-3.5-turbo", Encoding::Cl100kBase),
            ("gpt-35-turbo", Encoding::Cl100kBase),
            ("ft:gpt-3.5-turbo-0125:acme::xyz", Encoding::Cl100kBase),
            ("text-embedding-3-small", Encoding::Cl100kBase),
            ("text-embedding-ada-002", Encoding::Cl100kBase),
            ("claude-sonnet-4-5", Encoding::ANTHROPIC),
            ("claude-3-5-haiku-20241022", Encoding::ANTHROPIC),
            ("anthropic/claude-opus-4-1", Encoding::ANTHROPIC),
            (
                "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
                Encoding::ANTHROPIC,
            ),
            ("claude-opus-4-7", Encoding::ANTHROPIC_OPUS_4_7),
            ("gemini-2.5-flash", Encoding::GEMINI),
            ("models/gemini-2.0-flash", Encoding::GEMINI),
            ("llama-3.1-70b", Encoding::O200kBase),
            ("", Encoding::O200kBase),
        ];
        for (model, expected) in cases {
            assert_eq!(encoding_for_model(model), expected, "{model}");
        }
    }

    fn vector() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("You are a helpful assistant that answers tersely."),
            ChatMessage::user("What is the capital of France?").with_name("alice"),
            ChatMessage::assistant("Paris."),
            ChatMessage::user("And of Germany? Answer in one word."),
        ]
    }

    #[test]
    fn chat_overhead_matches_formula() {
        for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
            let c = |s: &str| count_tokens(encoding, s);
            let by_hand =
                (3 + c("system") + c("You are a helpful assistant that answers tersely."))
                    + (3 + c("user") + c("What is the capital of France?") + 1 + c("alice"))
                    + (3 + c("assistant") + c("Paris."))
                    + (3 + c("user") + c("And of Germany? Answer in one word."))
                    + 3;
            assert_eq!(count_chat(encoding, &vector()), by_hand, "{encoding}");
        }
        // Pinned for o200k, so a change in the formula or the tokenizer shows up.
        assert_eq!(count_chat(Encoding::O200kBase, &vector()), 49);
        // And cross-checked against tiktoken-rs's own port of the cookbook function.
        let theirs: Vec<_> = vector()
            .into_iter()
            .map(|m| tiktoken_rs::ChatCompletionRequestMessage {
                role: m.role,
                content: Some(m.content),
                name: m.name,
                ..Default::default()
            })
            .collect();
        for (model, encoding) in [
            ("gpt-4o", Encoding::O200kBase),
            ("gpt-4", Encoding::Cl100kBase),
        ] {
            let expected = tiktoken_rs::num_tokens_from_messages(model, &theirs).unwrap() as u64;
            assert_eq!(count_chat(encoding, &vector()), expected, "{model}");
        }
        assert_eq!(count_chat(Encoding::O200kBase, &[]), 3);
        let raw = count_chat(Encoding::O200kBase, &vector());
        assert_eq!(
            count_chat(Encoding::ANTHROPIC, &vector()),
            (raw * 140).div_ceil(100)
        );
    }

    #[test]
    fn estimate_tokens_impls() {
        let enc = Encoding::O200kBase;
        let text = "The quick brown fox jumps over the lazy dog.";
        let n = count_tokens(enc, text);
        assert_eq!(text.estimate_tokens(enc), n);
        assert_eq!(String::from(text).estimate_tokens(enc), n);
        assert_eq!(Cow::Borrowed(text).estimate_tokens(enc), n);
        assert_eq!((&text).estimate_tokens(enc), n);
        let mut owned = String::from(text);
        assert_eq!(EstimateTokens::estimate_tokens(&&mut owned, enc), n);
        assert_eq!(Box::<str>::from(text).estimate_tokens(enc), n);
        assert_eq!(Arc::<str>::from(text).estimate_tokens(enc), n);
        assert_eq!(Rc::new(text.to_owned()).estimate_tokens(enc), n);
        assert_eq!(Some(text).estimate_tokens(enc), n);
        assert_eq!(None::<&str>.estimate_tokens(enc), 0);
        assert_eq!(vec![text, text].estimate_tokens(enc), 2 * n);
        assert_eq!([text; 3].estimate_tokens(enc), 3 * n);
        assert_eq!((text, Some(text), [text]).estimate_tokens(enc), 3 * n);

        // Messages: a conversation gets the reply priming once; one message is a conversation.
        let messages = vector();
        assert_eq!(messages.estimate_tokens(enc), count_chat(enc, &messages));
        assert_eq!(
            messages[..].estimate_tokens(enc),
            count_chat(enc, &messages)
        );
        assert_eq!(
            messages[2].estimate_tokens(enc),
            count_chat(enc, &messages[2..3])
        );
    }

    #[test]
    fn json_chat_request_matches_count_chat() {
        let enc = Encoding::O200kBase;
        let request = json!({
            "model": "gpt-4o-mini",
            "temperature": 0.2,
            "max_tokens": 256,
            "stream": false,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant that answers tersely."},
                {"role": "user", "name": "alice", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": [
                    {"type": "text", "text": "And of Germany? Answer in one word."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}}
                ]}
            ]
        });
        // The parts array adds its two `type` strings and nothing for the data URL.
        let parts_overhead = count_tokens(enc, "text") + count_tokens(enc, "image_url");
        assert_eq!(
            request.estimate_tokens(enc),
            count_chat(enc, &vector()) + parts_overhead
        );

        // Anthropic: system prompt outside the messages, base64 `data` skipped.
        let anthropic = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "Describe it."}
            ]}]
        });
        let c = |s: &str| count_tokens(enc, s);
        let expected = c("Be brief.")
            + (3 + c("user")
                + c("image")
                + c("base64")
                + c("image/png")
                + c("text")
                + c("Describe it."))
            + 3;
        assert_eq!(anthropic.estimate_tokens(enc), expected);

        // Scalars and keys are free; plain strings and arrays are counted.
        assert_eq!(
            json!({"temperature": 1, "stream": true, "stop": null}).estimate_tokens(enc),
            0
        );
        assert_eq!(json!("Hello, world!").estimate_tokens(enc), 4);
        assert_eq!(
            json!(["Hello, world!", 5, "Hello, world!"]).estimate_tokens(enc),
            8
        );
        let raw = request.estimate_tokens(enc);
        assert_eq!(
            request.estimate_tokens(Encoding::ANTHROPIC),
            (raw * 140).div_ceil(100)
        );
    }

    #[test]
    fn warm_builds_the_tokenizer() {
        Encoding::Cl100kBase
            .warm_in_background()
            .expect("a thread")
            .join()
            .unwrap();
        assert!(Encoding::Cl100kBase.is_warm());
        Encoding::GEMINI.warm();
        assert!(Encoding::O200kBase.is_warm(), "approximations share o200k");
    }

    fn big_prompt() -> String {
        let mut prompt = String::new();
        let mut i = 0;
        while prompt.len() < 200 * 1024 {
            prompt.push_str(FIXTURES[i % FIXTURES.len()].1);
            prompt.push_str("\n\n");
            i += 1;
        }
        prompt
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn big_prompt_counts_on_blocking_pool_same_as_sync() {
        let prompt = big_prompt();
        assert!(prompt.len() >= 200 * 1024);
        for encoding in [
            Encoding::O200kBase,
            Encoding::Cl100kBase,
            Encoding::ANTHROPIC,
        ] {
            let sync = count_tokens(encoding, &prompt);
            assert_eq!(
                count_tokens_async(encoding, &prompt).await,
                sync,
                "{encoding}"
            );
        }
    }

    #[tokio::test]
    async fn async_count_on_a_current_thread_runtime() {
        let small = FIXTURES[1].1;
        let expected = count_tokens(Encoding::O200kBase, small);
        assert_eq!(
            count_tokens_async(Encoding::O200kBase, small).await,
            expected
        );
        let big = big_prompt();
        assert_eq!(
            count_tokens_async(Encoding::O200kBase, &big).await,
            count_tokens(Encoding::O200kBase, &big)
        );
    }
}
