//! What a limit counts and what one request costs: the dimensions of a limit family, the cost
//! reserved before a call and the usage read after it.

use std::fmt;
use std::time::Duration;

/// One limited quantity of a limit family.
///
/// Every dimension except [`Dimension::Concurrency`] is a continuously refilled bucket whose
/// capacity is one window of quota (a minute or a day) times the headroom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dimension {
    /// Requests per minute (`RPM`).
    RequestsPerMinute,
    /// Input plus output tokens per minute (`TPM`).
    TokensPerMinute,
    /// Input tokens per minute (`ITPM`, Anthropic; Gemini's TPM counts input only).
    InputTokensPerMinute,
    /// Output tokens per minute (`OTPM`, Anthropic).
    OutputTokensPerMinute,
    /// Requests per day (`RPD`).
    RequestsPerDay,
    /// Input plus output tokens per day (`TPD`).
    TokensPerDay,
    /// Requests in flight at once (`CONCURRENCY`).
    Concurrency,
    /// Minimum time between two request starts (`MIN_INTERVAL_MS`).
    MinInterval,
    /// Requests per second (`BURST`): a short-window cap under the per-minute one.
    ///
    /// Azure OpenAI checks RPM over 1 s or 10 s windows (a 600-RPM deployment answers 429 past
    /// 10 requests in one second), so a full minute's bucket released at once draws 429s
    /// there. A one-second bucket of `RPM / 60` is the stricter of Azure's two windows; it is
    /// on by default for Azure and set by `RATE_LIMITED_<FAMILY>_BURST` for any family.
    RequestsPerSecond,
}

impl Dimension {
    /// Every dimension, in the order limits are checked and reported.
    pub const ALL: [Dimension; 9] = [
        Dimension::RequestsPerMinute,
        Dimension::TokensPerMinute,
        Dimension::InputTokensPerMinute,
        Dimension::OutputTokensPerMinute,
        Dimension::RequestsPerDay,
        Dimension::TokensPerDay,
        Dimension::Concurrency,
        Dimension::MinInterval,
        Dimension::RequestsPerSecond,
    ];

    /// The suffix this dimension has in `RATE_LIMITED_<FAMILY>_<DIM>` env vars.
    pub const fn env_suffix(self) -> &'static str {
        match self {
            Dimension::RequestsPerMinute => "RPM",
            Dimension::TokensPerMinute => "TPM",
            Dimension::InputTokensPerMinute => "ITPM",
            Dimension::OutputTokensPerMinute => "OTPM",
            Dimension::RequestsPerDay => "RPD",
            Dimension::TokensPerDay => "TPD",
            Dimension::Concurrency => "CONCURRENCY",
            Dimension::MinInterval => "MIN_INTERVAL_MS",
            Dimension::RequestsPerSecond => "BURST",
        }
    }

    /// Whether this dimension counts tokens (what a server may count after the response).
    pub(crate) const fn counts_tokens(self) -> bool {
        matches!(
            self,
            Dimension::TokensPerMinute
                | Dimension::InputTokensPerMinute
                | Dimension::OutputTokensPerMinute
                | Dimension::TokensPerDay
        )
    }

    /// The window one quota of this dimension refills over (`None` for concurrency).
    pub const fn window(self) -> Option<Duration> {
        match self {
            Dimension::RequestsPerMinute
            | Dimension::TokensPerMinute
            | Dimension::InputTokensPerMinute
            | Dimension::OutputTokensPerMinute => Some(Duration::from_secs(60)),
            Dimension::RequestsPerDay | Dimension::TokensPerDay => {
                Some(Duration::from_secs(86_400))
            }
            Dimension::RequestsPerSecond => Some(Duration::from_secs(1)),
            Dimension::Concurrency | Dimension::MinInterval => None,
        }
    }

    /// How much of `cost` this dimension charges.
    pub const fn charge(self, cost: &Cost) -> u64 {
        match self {
            Dimension::RequestsPerMinute
            | Dimension::RequestsPerDay
            | Dimension::Concurrency
            | Dimension::MinInterval
            | Dimension::RequestsPerSecond => cost.requests as u64,
            Dimension::TokensPerMinute | Dimension::TokensPerDay => cost.tokens(),
            Dimension::InputTokensPerMinute => cost.input_tokens,
            Dimension::OutputTokensPerMinute => cost.output_tokens,
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::RequestsPerMinute => "requests per minute",
            Dimension::TokensPerMinute => "tokens per minute",
            Dimension::InputTokensPerMinute => "input tokens per minute",
            Dimension::OutputTokensPerMinute => "output tokens per minute",
            Dimension::RequestsPerDay => "requests per day",
            Dimension::TokensPerDay => "tokens per day",
            Dimension::Concurrency => "requests in flight",
            Dimension::MinInterval => "minimum interval between requests",
            Dimension::RequestsPerSecond => "requests per second",
        })
    }
}

/// What one request charges, reserved before the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cost {
    /// Requests (normally 1).
    pub requests: u32,
    /// Estimated input (prompt) tokens.
    pub input_tokens: u64,
    /// Output tokens the request may produce (`n × max_tokens`).
    pub output_tokens: u64,
}

impl Cost {
    /// One request with the given input and output token reservation.
    pub const fn request(input_tokens: u64, output_tokens: u64) -> Self {
        Cost {
            requests: 1,
            input_tokens,
            output_tokens,
        }
    }

    /// Input plus output tokens.
    pub const fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The same requests, charged what `usage` reports: what a settle leaves in the buckets.
    pub const fn settled(&self, usage: Usage) -> Cost {
        Cost {
            requests: self.requests,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        }
    }
}

/// The tokens a finished request really used, read from its response (what
/// [`ReportUsage`](crate::ReportUsage) returns).
///
/// `input_tokens` is the whole prompt, whatever the provider's cache did with it; the two cache
/// counts say which part of it the cache served or stored, and are each part of
/// `input_tokens`. What counts toward a limit is the provider's rule, applied when the
/// reservation settles ([`ModelProfile::charged_usage`](crate::config::ModelProfile::charged_usage)):
/// Anthropic's ITPM leaves cache reads out on most models, OpenAI's TPM counts them. The price
/// of the cached part is the cached price ([`Price::of_usage`](crate::model::prices::Price::of_usage)).
///
/// [`Usage::new`] is a usage without cache; add the cache counts with
/// [`Usage::with_cache_reads`] and [`Usage::with_cache_writes`]:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::Usage;
/// // Anthropic: 1,000 uncached + 9,000 read from the cache, 200 out.
/// let usage = Usage::new(10_000, 200).with_cache_reads(9_000);
/// assert_eq!(usage.uncached_input_tokens(), 1_000);
/// assert_eq!(Usage::new(10_000, 200).cache_read_input_tokens, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Every input (prompt) token of the request, cache reads and cache writes included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// The part of `input_tokens` read from the provider's prompt cache (OpenAI
    /// `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`, Gemini
    /// `cachedContentTokenCount`).
    pub cache_read_input_tokens: u64,
    /// The part of `input_tokens` written to the provider's prompt cache (Anthropic
    /// `cache_creation_input_tokens`, OpenAI `prompt_tokens_details.cache_write_tokens`).
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// Usage with the given input and output tokens, none of them cached.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
        }
    }

    /// The same usage with `tokens` of its input read from the prompt cache (at most the
    /// whole input).
    #[must_use]
    pub const fn with_cache_reads(mut self, tokens: u64) -> Self {
        self.cache_read_input_tokens = if tokens < self.input_tokens {
            tokens
        } else {
            self.input_tokens
        };
        self
    }

    /// The same usage with `tokens` of its input written to the prompt cache (at most the
    /// whole input).
    #[must_use]
    pub const fn with_cache_writes(mut self, tokens: u64) -> Self {
        self.cache_creation_input_tokens = if tokens < self.input_tokens {
            tokens
        } else {
            self.input_tokens
        };
        self
    }

    /// Input tokens the cache neither served nor stored.
    pub const fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_input_tokens)
            .saturating_sub(self.cache_creation_input_tokens)
    }

    /// The sum of two usages, count by count (a batch of responses).
    #[must_use]
    pub const fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_read_input_tokens: self
                .cache_read_input_tokens
                .saturating_add(other.cache_read_input_tokens),
            cache_creation_input_tokens: self
                .cache_creation_input_tokens
                .saturating_add(other.cache_creation_input_tokens),
        }
    }
}
