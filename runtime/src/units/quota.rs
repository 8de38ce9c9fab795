//! The limits of one limit family and the fraction of them to use.

use std::time::Duration;

use crate::units::cost::Dimension;
use crate::units::error::Error;

/// The limits of one limit family, plus the fraction of them to use.
///
/// `None` means the dimension is not limited. Headroom scales every limit (rate and capacity
/// alike) except concurrency and the minimum interval.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::Quota;
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
    /// Requests per second: the short-window (burst) cap, see [`Dimension::RequestsPerSecond`].
    pub rps: Option<u64>,
    /// Fraction of each limit to use, in (0, 1].
    pub headroom: f64,
    /// How the server counts each limit over its window.
    pub window: Window,
    /// When the server counts a request's tokens.
    pub charged: Charged,
}

/// When a server counts a request's tokens (`RATE_LIMITED_<FAMILY>_CHARGED`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Charged {
    /// On arrival: the prompt and `max_tokens` (OpenAI, Azure) or the prompt (Anthropic), then
    /// settled. A request is refused when it does not fit.
    #[default]
    OnArrival,
    /// From the answer's usage, as it leaves (some gateways): a request is refused only when
    /// the recorded usage is already at the limit, and the last one admitted may take it past.
    /// The limiter reserves no output and admits while the token buckets are not full.
    AfterResponse,
}

impl Charged {
    /// The accepted values of `RATE_LIMITED_<FAMILY>_CHARGED`.
    pub const ACCEPTED: &'static str =
        "arrival (tokens counted when the request arrives) or response (counted from the \
         answer's usage, as some gateways do)";

    /// Parses a `RATE_LIMITED_<FAMILY>_CHARGED` value.
    pub fn parse(value: &str) -> Option<Charged> {
        match value.trim().to_ascii_lowercase().as_str() {
            "arrival" => Some(Charged::OnArrival),
            "response" => Some(Charged::AfterResponse),
            _ => None,
        }
    }
}

/// How a server counts a limit over its window (`RATE_LIMITED_<FAMILY>_WINDOW`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Window {
    /// A bucket that refills continuously (OpenAI, Azure, Anthropic, Gemini): a burst of the
    /// whole limit, then its rate.
    #[default]
    Continuous,
    /// A count over a sliding window (the last minute, as Kong's AI rate limiting keeps by
    /// default): the limiter sends at most the limit in any window. Safe for a fixed window
    /// too, whatever its boundary.
    Sliding,
    /// A count per fixed window (per calendar minute, as LiteLLM counts): until an answer has
    /// shown where the server's windows start, as [`Window::Sliding`]; from then on the whole
    /// limit in each of the server's windows, a burst at each boundary. The boundary comes
    /// from the answers' reset headers, a 429's retry-after, or `remaining` jumping back
    /// more than a refill could; requests sent close enough before it to reach the server
    /// after it count in both windows.
    Fixed,
}

impl Window {
    /// The accepted values of `RATE_LIMITED_<FAMILY>_WINDOW`.
    pub const ACCEPTED: &'static str = "continuous (a refilling bucket: OpenAI, Anthropic, \
        Azure, Gemini), sliding (a count over the last minute) or fixed (a count per minute \
        from a boundary), as LLM gateways keep";

    /// Parses a `RATE_LIMITED_<FAMILY>_WINDOW` value.
    pub fn parse(value: &str) -> Option<Window> {
        match value.trim().to_ascii_lowercase().as_str() {
            "continuous" => Some(Window::Continuous),
            "sliding" => Some(Window::Sliding),
            "fixed" => Some(Window::Fixed),
            _ => None,
        }
    }
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
            rps: None,
            headroom: 1.0,
            window: Window::Continuous,
            charged: Charged::OnArrival,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $ty:ty),* $(,)?) => {$(
        #[$doc]
        ///
        /// # Panics
        /// If `value` is zero: a limit of nothing admits nothing, which is never what is meant
        /// (leave the dimension unset for no limit).
        #[must_use]
        #[track_caller]
        pub fn $name(mut self, value: $ty) -> Self {
            assert!(
                value != <$ty>::default(),
                concat!("Quota::", stringify!($name), "(0): a limit must be positive (leave it unset for no limit)")
            );
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
        /// Sets the requests per second (the short-window burst cap).
        rps: u64,
    }

    /// Sets the fraction of each limit to use, in (0, 1].
    ///
    /// # Panics
    /// If `headroom` is not in (0, 1] (NaN included): above 1 would admit more than the
    /// provider allows, and 0 or below would admit nothing. `RATE_LIMITED_HEADROOM` is checked
    /// the same way, as an error naming the variable.
    #[must_use]
    #[track_caller]
    pub fn headroom(mut self, headroom: f64) -> Self {
        if let Err(error) = check_headroom(headroom) {
            panic!("Quota::headroom({headroom}): {error}");
        }
        self.headroom = headroom;
        self
    }

    /// Checks a quota built field by field (the fields are public): every limit positive,
    /// headroom in (0, 1].
    ///
    /// # Errors
    /// [`Error::Config`] naming the field, its value and what is accepted.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::Quota;
    /// let mut quota = Quota::default().tpm(1_000);
    /// assert!(quota.validate().is_ok());
    /// quota.headroom = 1.5;
    /// assert!(quota.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        check_headroom(self.headroom).map_err(|expected| {
            Error::config("Quota::headroom", self.headroom.to_string(), expected)
        })?;
        for dimension in Dimension::ALL {
            if self.limit(dimension) == Some(0) {
                return Err(Error::config(
                    format!("Quota {dimension}"),
                    "0",
                    "a positive limit, or no limit (None)",
                ));
            }
        }
        Ok(())
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
            Dimension::RequestsPerSecond => self.rps,
        }
    }

    /// Sets the limit of `dimension` (`MinInterval` in milliseconds); `None` removes it.
    ///
    /// # Panics
    /// If `value` is `Some(0)` (see [`Quota::rpm`]).
    #[track_caller]
    pub fn set_limit(&mut self, dimension: Dimension, value: Option<u64>) {
        assert!(
            value != Some(0),
            "Quota::set_limit({dimension}, Some(0)): a limit must be positive (None for no limit)"
        );
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
            Dimension::RequestsPerSecond => self.rps = value,
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

/// `Ok` for a headroom in (0, 1]; otherwise what is accepted.
pub(crate) fn check_headroom(headroom: f64) -> Result<(), &'static str> {
    if headroom > 0.0 && headroom <= 1.0 {
        Ok(())
    } else {
        Err("a number greater than 0 and at most 1, the fraction of each limit to use (e.g. 0.9)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("should panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn headroom_outside_zero_to_one_panics_with_the_accepted_range() {
        for bad in [1.5, 0.0, -1.0, f64::NAN, f64::INFINITY] {
            let message = panic_message(move || drop(Quota::default().tpm(1_000).headroom(bad)));
            assert!(message.contains("Quota::headroom("), "{message}");
            assert!(
                message.contains("greater than 0 and at most 1"),
                "{message}"
            );
        }
        // The issue's case: 1.5 on 1,000 TPM would have allowed 1,500 (1,400 admitted).
        for good in [1.0, 0.5, f64::MIN_POSITIVE] {
            assert_eq!(Quota::default().headroom(good).headroom, good);
        }
    }

    #[test]
    fn zero_limits_panic_naming_the_setter() {
        let message = panic_message(|| drop(Quota::default().rpm(0)));
        assert!(message.contains("Quota::rpm(0)"), "{message}");
        let message = panic_message(|| drop(Quota::default().concurrency(0)));
        assert!(message.contains("Quota::concurrency(0)"), "{message}");
        let message = panic_message(|| drop(Quota::default().min_interval(Duration::ZERO)));
        assert!(message.contains("Quota::min_interval(0)"), "{message}");
        let message =
            panic_message(|| Quota::default().set_limit(Dimension::TokensPerDay, Some(0)));
        assert!(message.contains("a limit must be positive"), "{message}");
    }

    #[test]
    fn validate_checks_quotas_built_field_by_field() {
        assert_eq!(Quota::default().rpm(1).validate(), Ok(()));
        let mut quota = Quota::default().rpm(10);
        quota.headroom = f64::NAN;
        let err = quota.validate().unwrap_err().to_string();
        assert!(
            err.contains("Quota::headroom") && err.contains("at most 1"),
            "{err}"
        );
        let quota = Quota {
            tpm: Some(0),
            ..Quota::default()
        };
        let err = quota.validate().unwrap_err().to_string();
        assert!(
            err.contains("tokens per minute") && err.contains("positive"),
            "{err}"
        );
    }
}
