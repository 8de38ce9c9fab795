//! Token estimation: how many prompt tokens a request's arguments will cost, before it is sent.
//!
//! OpenAI models are counted exactly with their tiktoken encoding (via `tiktoken-rs`); Anthropic
//! and Gemini tokenizers are not public, so their models get a deliberately high approximation
//! (see [`Encoding::Approximate`]). Estimates feed a reservation that is settled to the real
//! usage after the call, so a small error costs a little throughput, never correctness; erring
//! high is the safe direction, because an under-estimate lets concurrent bursts overshoot.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tiktoken_rs::CoreBPE;

// Declared first: the estimate counts images with it.
mod image;

pub(crate) mod estimate;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod tests;

pub(crate) use estimate::EstimateTokens;
pub use estimate::{count_chat, ChatMessage};

/// Text at least this long (in bytes, 64 KiB) is counted on tokio's blocking pool by
/// [`count_tokens_async`] instead of on the executor.
///
/// o200k counts ordinary text at roughly 7-20 MB/s (release build), so 64 KiB costs 3-10 ms of
/// CPU: about the most a task should hold an executor thread for.
pub(crate) const ASYNC_COUNT_THRESHOLD: usize = 64 * 1024;

/// How a model's text is turned into tokens for estimates.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::tokens::{count_tokens, encoding_for_model, Encoding};
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

    /// Builds this encoding's tokenizer without holding up the async executor, and waits for
    /// it: on tokio's blocking pool inside a runtime (any flavor, `LocalSet` included), inline
    /// outside one or when the runtime is shutting down. Returns at once when it is built.
    pub async fn ready(self) {
        if self.is_warm() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.warm();
        };
        if runtime.spawn_blocking(move || self.warm()).await.is_err() {
            self.warm();
        }
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
pub(super) fn bpe(encoding: Encoding) -> &'static CoreBPE {
    let bpe = match encoding {
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Encoding::O200kBase | Encoding::Approximate { .. } => tiktoken_rs::o200k_base_singleton(),
    };
    ready_flag(encoding).store(true, Ordering::Release);
    bpe
}

/// Applies an approximation's factor to a raw o200k count.
pub(super) fn scale(encoding: Encoding, raw: u64) -> u64 {
    match encoding {
        Encoding::Approximate { o200k_percent } => {
            raw.saturating_mul(u64::from(o200k_percent)).div_ceil(100)
        }
        Encoding::O200kBase | Encoding::Cl100kBase => raw,
    }
}

pub(super) fn raw_count(bpe: &CoreBPE, text: &str) -> u64 {
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
/// Text of 64 KiB or more, and any text while the tokenizer is not yet
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
