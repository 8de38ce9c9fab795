//! The variables of long runs: the circuit breaker, prices and spend limits.

use std::time::Duration;

use super::get;
use super::limits::parse_integer;
use crate::model::limit_family::LimitFamily;
use crate::model::prices::Price;
use crate::units::error::Error;
use crate::units::money::{BudgetPeriod, Nanodollars, SpendLimit};

/// `RATE_LIMITED_BREAKER_FAILURES`: consecutive transient failures that open a family's breaker.
pub const BREAKER_FAILURES_VAR: &str = "RATE_LIMITED_BREAKER_FAILURES";
/// `RATE_LIMITED_BREAKER_COOLDOWN_MS`: how long an open breaker refuses calls.
pub const BREAKER_COOLDOWN_VAR: &str = "RATE_LIMITED_BREAKER_COOLDOWN_MS";
/// `RATE_LIMITED_BUDGET_TOKENS`: tokens the whole process may use.
pub const BUDGET_TOKENS_VAR: &str = "RATE_LIMITED_BUDGET_TOKENS";
/// `RATE_LIMITED_BUDGET_USD`: US dollars the whole process may spend.
pub const BUDGET_USD_VAR: &str = "RATE_LIMITED_BUDGET_USD";

/// The default [`BREAKER_FAILURES_VAR`]. Concurrent calls fail together when a provider
/// blips, so a handful of failures in a row says little; ten says it is down.
pub const DEFAULT_BREAKER_FAILURES: u32 = 10;
/// The default [`BREAKER_COOLDOWN_VAR`].
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

/// `RATE_LIMITED_<FAMILY>_PRICE`: the family's price, `input=2.5,cached=1.25,output=10`.
pub fn price_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_PRICE", family.env_prefix())
}

/// `RATE_LIMITED_<FAMILY>_BUDGET_TOKENS`.
pub fn family_budget_tokens_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_BUDGET_TOKENS", family.env_prefix())
}

/// `RATE_LIMITED_<FAMILY>_BUDGET_USD`.
pub fn family_budget_usd_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_BUDGET_USD", family.env_prefix())
}

/// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_TOKENS`: what each tenant may use of the family.
pub fn tenant_budget_tokens_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_TENANT_BUDGET_TOKENS", family.env_prefix())
}

/// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_USD`.
pub fn tenant_budget_usd_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_TENANT_BUDGET_USD", family.env_prefix())
}

/// `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD`: `total` or `day`.
pub fn tenant_budget_period_var(family: &LimitFamily) -> String {
    format!("RATE_LIMITED_{}_TENANT_BUDGET_PERIOD", family.env_prefix())
}

/// Reads `RATE_LIMITED_<FAMILY>_TENANT_BUDGET_PERIOD` (`total` when unset).
pub(crate) fn read_budget_period(
    lookup: &dyn Fn(&str) -> Option<String>,
    family: &LimitFamily,
) -> Result<BudgetPeriod, Error> {
    let var = tenant_budget_period_var(family);
    match get(lookup, &var) {
        None => Ok(BudgetPeriod::Total),
        Some(value) => BudgetPeriod::parse(&value)
            .ok_or_else(|| Error::config(&var, value, BudgetPeriod::ACCEPTED)),
    }
}

pub(crate) fn read_breaker_failures(lookup: &dyn Fn(&str) -> Option<String>) -> Result<u32, Error> {
    let Some(value) = get(lookup, BREAKER_FAILURES_VAR) else {
        return Ok(DEFAULT_BREAKER_FAILURES);
    };
    parse_integer(&value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            Error::config(
                BREAKER_FAILURES_VAR,
                value,
                "a whole number of consecutive transient failures (5xx, 529, timeouts) that \
                 open the breaker, e.g. 5; 0 turns the breaker off",
            )
        })
}

pub(crate) fn read_breaker_cooldown(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, Error> {
    let Some(value) = get(lookup, BREAKER_COOLDOWN_VAR) else {
        return Ok(DEFAULT_BREAKER_COOLDOWN);
    };
    parse_integer(&value)
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| {
            Error::config(
                BREAKER_COOLDOWN_VAR,
                value,
                "a positive whole number of milliseconds an open breaker refuses calls, e.g. \
                 30000",
            )
        })
}

/// Reads a process-wide or per-family pair of budget variables.
pub(crate) fn read_spend_limit(
    lookup: &dyn Fn(&str) -> Option<String>,
    tokens_var: &str,
    usd_var: &str,
) -> Result<SpendLimit, Error> {
    let tokens = match get(lookup, tokens_var) {
        None => None,
        Some(value) => Some(parse_integer(&value).filter(|n| *n > 0).ok_or_else(|| {
            Error::config(
                tokens_var,
                value,
                "a positive whole number of tokens (`_` separators allowed, e.g. 2_000_000)",
            )
        })?),
    };
    let usd = match get(lookup, usd_var) {
        None => None,
        Some(value) => Some(parse_dollars(&value).ok_or_else(|| {
            Error::config(
                usd_var,
                value,
                "a positive amount of US dollars in decimals (`_` separators allowed, no \
                 currency sign or exponent, at least 0.000000001; e.g. 25, 2.50 or 1_000)",
            )
        })?),
    };
    Ok(SpendLimit { tokens, usd })
}

/// Reads `RATE_LIMITED_<FAMILY>_PRICE`, if set.
pub(crate) fn read_price(
    lookup: &dyn Fn(&str) -> Option<String>,
    family: &LimitFamily,
) -> Result<Option<Price>, Error> {
    let variable = price_var(family);
    let Some(value) = get(lookup, &variable) else {
        return Ok(None);
    };
    parse_price(&value).map(Some).ok_or_else(|| {
        Error::config(
            variable,
            value,
            "comma-separated `input=USD`, `output=USD` and optional `cached=USD`, each per \
             million tokens (e.g. input=2.5,cached=1.25,output=10); cached defaults to input",
        )
    })
}

/// `25`, `2.50`, `1_000.50`: whole dollars and optional decimals, each part read by the rule
/// token variables follow ([`parse_integer`]: digits, single `_` separators between them). At
/// least a nano-dollar, the unit a budget counts in: a smaller limit would round to nothing.
fn parse_dollars(value: &str) -> Option<f64> {
    let value = value.trim();
    let (whole, decimals) = match value.split_once('.') {
        Some((whole, decimals)) => (whole, Some(decimals)),
        None => (value, None),
    };
    parse_integer(whole)?;
    if let Some(decimals) = decimals {
        parse_integer(decimals)?;
    }
    let usd = value.replace('_', "").parse::<f64>().ok()?;
    (usd.is_finite() && Nanodollars::from_usd(usd) > Nanodollars::ZERO).then_some(usd)
}

fn parse_price(value: &str) -> Option<Price> {
    let (mut input, mut cached, mut output) = (None, None, None);
    for part in value.split(',') {
        let (key, amount) = part.split_once('=')?;
        let amount = amount
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|usd| usd.is_finite() && *usd >= 0.0)?;
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "input" => &mut input,
            "cached" => &mut cached,
            "output" => &mut output,
            _ => return None,
        };
        if slot.replace(amount).is_some() {
            return None;
        }
    }
    let (input, output) = (input?, output?);
    Some(Price::per_million(input, cached.unwrap_or(input), output))
}

#[cfg(test)]
mod tests {
    use super::super::test_env::{assert_config, env};
    use super::*;
    use crate::config::Provider;

    fn gpt4o() -> LimitFamily {
        LimitFamily::of(Provider::OpenAi, "gpt-4o")
    }

    #[test]
    fn prices_parse_and_name_the_variable_when_malformed() {
        let lookup = env(&[(
            "RATE_LIMITED_GPT_4O_PRICE",
            "input=2.5, cached=1.25,output=10",
        )]);
        assert_eq!(
            read_price(&lookup, &gpt4o()),
            Ok(Some(Price::per_million(2.5, 1.25, 10.0)))
        );
        let lookup = env(&[("RATE_LIMITED_GPT_4O_PRICE", "output=1,input=0.5")]);
        assert_eq!(
            read_price(&lookup, &gpt4o()),
            Ok(Some(Price::per_million(0.5, 0.5, 1.0)))
        );
        for bad in [
            "2.5",
            "input=2.5",
            "input=1,output=x",
            "input=1,output=2,tip=3",
            "input=1,input=2,output=3",
            "input=-1,output=2",
        ] {
            let lookup = env(&[("RATE_LIMITED_GPT_4O_PRICE", bad)]);
            assert_config(
                read_price(&lookup, &gpt4o()),
                "RATE_LIMITED_GPT_4O_PRICE",
                bad,
                "input=2.5,cached=1.25,output=10",
            );
        }
    }

    #[test]
    fn budgets_and_breaker_settings_parse() {
        let lookup = env(&[(BUDGET_TOKENS_VAR, "2_000_000"), (BUDGET_USD_VAR, "2.50")]);
        assert_eq!(
            read_spend_limit(&lookup, BUDGET_TOKENS_VAR, BUDGET_USD_VAR),
            Ok(SpendLimit {
                tokens: Some(2_000_000),
                usd: Some(2.5)
            })
        );
        for bad in ["0", "-5", "1e3x", "lots"] {
            let lookup = env(&[(BUDGET_TOKENS_VAR, bad)]);
            assert_config(
                read_spend_limit(&lookup, BUDGET_TOKENS_VAR, BUDGET_USD_VAR),
                BUDGET_TOKENS_VAR,
                bad,
                "positive whole number of tokens",
            );
        }
        let lookup = env(&[(BUDGET_USD_VAR, " 1_000.000_5 ")]);
        assert_eq!(
            read_spend_limit(&lookup, BUDGET_TOKENS_VAR, BUDGET_USD_VAR),
            Ok(SpendLimit::usd(1_000.000_5))
        );
        for bad in [
            "$5",
            "0",
            "0.0000000001",
            "NaN",
            "inf",
            "1e3",
            "-5",
            "+5",
            ".5",
            "5.",
            "1__000",
            "_5",
            "5_",
            "1_.5",
            "1._5",
            "1.5_",
            "1.2.3",
        ] {
            let lookup = env(&[(BUDGET_USD_VAR, bad)]);
            assert_config(
                read_spend_limit(&lookup, BUDGET_TOKENS_VAR, BUDGET_USD_VAR),
                BUDGET_USD_VAR,
                bad,
                "US dollars in decimals (`_` separators allowed",
            );
        }
        assert_eq!(read_breaker_failures(&env(&[])), Ok(10));
        assert_eq!(
            read_breaker_failures(&env(&[(BREAKER_FAILURES_VAR, "0")])),
            Ok(0)
        );
        assert_config(
            read_breaker_failures(&env(&[(BREAKER_FAILURES_VAR, "five")])),
            BREAKER_FAILURES_VAR,
            "five",
            "0 turns the breaker off",
        );
        assert_eq!(
            read_breaker_cooldown(&env(&[(BREAKER_COOLDOWN_VAR, "1_500")])),
            Ok(Duration::from_millis(1_500))
        );
        for bad in ["0", "30s", "-1"] {
            assert_config(
                read_breaker_cooldown(&env(&[(BREAKER_COOLDOWN_VAR, bad)])),
                BREAKER_COOLDOWN_VAR,
                bad,
                "milliseconds",
            );
        }
    }
}
