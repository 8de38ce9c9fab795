//! Limits, the dimensions they apply to, and what one request costs.

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
}

impl Dimension {
    /// Every dimension, in the order limits are checked and reported.
    pub const ALL: [Dimension; 8] = [
        Dimension::RequestsPerMinute,
        Dimension::TokensPerMinute,
        Dimension::InputTokensPerMinute,
        Dimension::OutputTokensPerMinute,
        Dimension::RequestsPerDay,
        Dimension::TokensPerDay,
        Dimension::Concurrency,
        Dimension::MinInterval,
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
        }
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
            Dimension::Concurrency | Dimension::MinInterval => None,
        }
    }

    /// How much of `cost` this dimension charges.
    pub const fn charge(self, cost: &Cost) -> u64 {
        match self {
            Dimension::RequestsPerMinute
            | Dimension::RequestsPerDay
            | Dimension::Concurrency
            | Dimension::MinInterval => cost.requests as u64,
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
        })
    }
}

/// The limits of one limit family, plus the fraction of them to use.
///
/// `None` means the dimension is not limited. Headroom scales every limit (rate and capacity
/// alike) except concurrency and the minimum interval.
///
/// ```
/// use ratelimited_runtime::Quota;
/// let quota = Quota::default().rpm(500).tpm(30_000).headroom(0.9);
/// assert_eq!(quota.tpm, Some(30_000));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Input plus output tokens per minute.
    pub tpm: Option<u64>,
    /// Input tokens per minute.
    pub itpm: Option<u64>,
    /// Output tokens per minute.
    pub otpm: Option<u64>,
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Input plus output tokens per day.
    pub tpd: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
    /// Minimum time between two request starts.
    pub min_interval: Option<Duration>,
    /// Fraction of each limit to use, in (0, 1].
    pub headroom: f64,
}

impl Default for Quota {
    /// No limits at all, headroom 1.0.
    fn default() -> Self {
        Quota {
            rpm: None,
            tpm: None,
            itpm: None,
            otpm: None,
            rpd: None,
            tpd: None,
            concurrency: None,
            min_interval: None,
            headroom: 1.0,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $ty:ty),* $(,)?) => {$(
        #[$doc]
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = Some(value);
            self
        }
    )*};
}

impl Quota {
    setter! {
        /// Sets requests per minute.
        rpm: u64,
        /// Sets input plus output tokens per minute.
        tpm: u64,
        /// Sets input tokens per minute.
        itpm: u64,
        /// Sets output tokens per minute.
        otpm: u64,
        /// Sets requests per day.
        rpd: u64,
        /// Sets input plus output tokens per day.
        tpd: u64,
        /// Sets the in-flight cap.
        concurrency: u32,
        /// Sets the minimum time between two request starts.
        min_interval: Duration,
    }

    /// Sets the fraction of each limit to use, in (0, 1].
    #[must_use]
    pub fn headroom(mut self, headroom: f64) -> Self {
        self.headroom = headroom;
        self
    }

    /// The configured limit of `dimension` before headroom (`MinInterval` in milliseconds).
    pub fn limit(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::RequestsPerMinute => self.rpm,
            Dimension::TokensPerMinute => self.tpm,
            Dimension::InputTokensPerMinute => self.itpm,
            Dimension::OutputTokensPerMinute => self.otpm,
            Dimension::RequestsPerDay => self.rpd,
            Dimension::TokensPerDay => self.tpd,
            Dimension::Concurrency => self.concurrency.map(u64::from),
            Dimension::MinInterval => self.min_interval.map(|d| d.as_millis() as u64),
        }
    }

    /// Sets the limit of `dimension` (`MinInterval` in milliseconds).
    pub fn set_limit(&mut self, dimension: Dimension, value: Option<u64>) {
        match dimension {
            Dimension::RequestsPerMinute => self.rpm = value,
            Dimension::TokensPerMinute => self.tpm = value,
            Dimension::InputTokensPerMinute => self.itpm = value,
            Dimension::OutputTokensPerMinute => self.otpm = value,
            Dimension::RequestsPerDay => self.rpd = value,
            Dimension::TokensPerDay => self.tpd = value,
            Dimension::Concurrency => {
                self.concurrency = value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
            }
            Dimension::MinInterval => self.min_interval = value.map(Duration::from_millis),
        }
    }

    /// The effective capacity of a bucket dimension: one window of quota times the headroom,
    /// rounded down, at least 1. `None` if the dimension is unlimited or not a bucket.
    pub fn capacity(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::Concurrency => self.concurrency.map(u64::from),
            Dimension::MinInterval => self.min_interval.map(|_| 1),
            _ => self
                .limit(dimension)
                .map(|limit| ((limit as f64 * self.headroom).floor() as u64).max(1)),
        }
    }

    /// True if no dimension is limited.
    pub fn is_unlimited(&self) -> bool {
        Dimension::ALL.iter().all(|d| self.limit(*d).is_none())
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
}

/// The tokens a finished request really used, read from its response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Input tokens that count toward input limits (cache reads excluded where the provider
    /// excludes them).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Usage with the given input and output tokens.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
        }
    }
}
