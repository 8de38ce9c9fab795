//! One family's connection to Redis: the script, a bound on every call, and a breaker that
//! stops calling a Redis that does not answer and probes for its return.

use std::sync::Mutex;
use std::time::Duration;

use once_cell::sync::Lazy;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Client, IntoConnectionInfo, Script};
use tokio::time::Instant;

use crate::config::{redact_url, REDIS_URL_VAR};
use crate::units::error::Error;

use super::config::RedisConfig;
use crate::sync::Locked;

/// Reserve, adjust, hold, tighten and renew: one script, so every family's keys change
/// atomically on the server's clock. `Script` sends EVALSHA and reloads the script when the
/// server answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
static FAMILY_SCRIPT: Lazy<Script> = Lazy::new(|| Script::new(include_str!("family.lua")));

/// While the breaker is open, one caller per interval tries Redis again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The script's answer to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Done; a reservation sleeps `wait` before its request goes.
    Admitted { wait: Duration },
    /// No concurrency slot is free; the earliest lease expires after `retry`.
    NoSlot { retry: Duration },
    /// The request can never fit bucket `index` (0-based, in the order the buckets were sent).
    TooLarge { index: usize },
}

/// Why a call did not get an answer from Redis.
#[derive(Clone, Debug)]
pub(crate) enum Unavailable {
    /// The breaker is open: Redis was not asked.
    Open,
    /// Asked, and it failed or did not answer in time.
    Failed(String),
}

impl Unavailable {
    pub(crate) fn message(&self) -> String {
        match self {
            Unavailable::Open => "Redis did not answer recently (the breaker is open)".to_owned(),
            Unavailable::Failed(why) => why.clone(),
        }
    }
}

/// The arguments of one script call.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) keys: Vec<String>,
    pub(crate) args: Vec<String>,
}

pub(crate) struct Store {
    connection: ConnectionManager,
    timeout: Duration,
    breaker: Mutex<Breaker>,
    /// For messages: the URL without its password.
    url: String,
}

#[derive(Default)]
struct Breaker {
    /// When Redis last failed, while it has not answered since.
    open_since: Option<Instant>,
    next_probe: Option<Instant>,
}

impl Store {
    /// Prepares the connection without making it: a process starts while Redis is down.
    pub(crate) fn connect(config: &RedisConfig) -> Result<Store, Error> {
        let bad_url = |e: redis::RedisError| {
            Error::config(
                REDIS_URL_VAR,
                redact_url(config.url()),
                format!("a Redis URL the client accepts ({e})"),
            )
        };
        let info = config
            .url()
            .into_connection_info()
            .map_err(bad_url)?
            // Small script calls stall behind Nagle's algorithm otherwise.
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = Client::open(info).map_err(bad_url)?;
        // The defaults retry a reconnect six times with backoff (about 9 s to a first error):
        // one quick retry, and our own timeout and breaker do the rest.
        let manager = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(config.call_timeout())
            .set_connection_timeout(Some(config.call_timeout()))
            .set_response_timeout(Some(config.call_timeout()));
        let connection =
            ConnectionManager::new_lazy_with_config(client, manager).map_err(bad_url)?;
        Ok(Store {
            connection,
            timeout: config.call_timeout(),
            breaker: Mutex::new(Breaker::default()),
            url: redact_url(config.url()),
        })
    }

    /// Runs the script once, bounded by the timeout; any failure (I/O, timeout, a script or
    /// cluster error) opens the breaker and is never read as an admission.
    pub(crate) async fn run(&self, call: &Call) -> Result<Reply, Unavailable> {
        self.invoke(call, parse).await
    }

    /// Runs a `batch` call: the server's clock (µs since the epoch), then one reply per
    /// request the script handled, in order.
    pub(crate) async fn run_batch(&self, call: &Call) -> Result<(u64, Vec<Reply>), Unavailable> {
        self.invoke(call, parse_batch).await
    }

    /// Runs the script once and reads its reply with `parse` (see [`Store::run`]).
    pub(crate) async fn invoke<T>(
        &self,
        call: &Call,
        parse: impl FnOnce(&[i64]) -> Result<T, String>,
    ) -> Result<T, Unavailable> {
        if !self.may_call() {
            return Err(Unavailable::Open);
        }
        let mut answer = self.call_once(call).await;
        // A probe after an outage goes out on the connection Redis dropped: that attempt
        // fails at once (and reconnects), without reaching any server. Try once more on the
        // new connection rather than waiting out another probe interval.
        if let Ok(Err(e)) = &answer {
            if self.is_down() && (e.is_connection_dropped() || e.is_io_error()) {
                answer = self.call_once(call).await;
            }
        }
        let reply = self.describe(answer).and_then(|reply| parse(&reply));
        self.outcome(reply)
    }

    /// Runs a plain pipeline (no script) under the same timeout and breaker: the shared
    /// learned limits and charge correction.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, Unavailable> {
        if !self.may_call() {
            return Err(Unavailable::Open);
        }
        let mut connection = self.connection.clone();
        let answer =
            tokio::time::timeout(self.timeout, pipeline.query_async::<T>(&mut connection)).await;
        let reply = self.describe(answer);
        self.outcome(reply)
    }

    /// An answer, or what went wrong in words.
    fn describe<T>(
        &self,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, String> {
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(format!("Redis at {} failed: {e}", self.url)),
            Err(_) => Err(format!(
                "Redis at {} did not answer within {:?}",
                self.url, self.timeout
            )),
        }
    }

    /// Closes the breaker on an answer, opens it on a failure.
    fn outcome<T>(&self, reply: Result<T, String>) -> Result<T, Unavailable> {
        match reply {
            Ok(reply) => {
                self.answered();
                Ok(reply)
            }
            Err(why) => {
                self.failed(&why);
                Err(Unavailable::Failed(why))
            }
        }
    }

    /// One script call, bounded by the timeout.
    async fn call_once(
        &self,
        call: &Call,
    ) -> Result<redis::RedisResult<Vec<i64>>, tokio::time::error::Elapsed> {
        let mut invocation = FAMILY_SCRIPT.prepare_invoke();
        for key in &call.keys {
            invocation.key(key);
        }
        for arg in &call.args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await
    }

    /// Closed: yes. Open: only the first caller after each probe interval.
    fn may_call(&self) -> bool {
        let mut breaker = self.breaker.locked();
        let Some(next) = breaker.next_probe else {
            return true;
        };
        let now = Instant::now();
        if now < next {
            return false;
        }
        breaker.next_probe = Some(now + PROBE_INTERVAL);
        true
    }

    fn answered(&self) {
        let mut breaker = self.breaker.locked();
        if let Some(since) = breaker.open_since.take() {
            breaker.next_probe = None;
            tracing::warn!(
                url = %self.url,
                outage = ?since.elapsed(),
                "Redis answers again: rate limits are shared again"
            );
        }
    }

    fn failed(&self, why: &str) {
        let mut breaker = self.breaker.locked();
        let now = Instant::now();
        if breaker.open_since.is_none() {
            // Once per outage, not once per call.
            breaker.open_since = Some(now);
            tracing::warn!(
                url = %self.url,
                error = %why,
                "Redis is unreachable: rate limits are no longer shared until it answers again"
            );
        }
        breaker.next_probe = Some(now + PROBE_INTERVAL);
    }

    /// Whether the breaker is open (Redis failed and has not answered since).
    pub(crate) fn is_down(&self) -> bool {
        self.breaker.locked().open_since.is_some()
    }
}

fn parse_batch(reply: &[i64]) -> Result<(u64, Vec<Reply>), String> {
    let Some((now, replies)) = reply.split_first() else {
        return Err("empty reply from the limiter script".to_owned());
    };
    let replies = replies
        .chunks(2)
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((u64::try_from(*now).unwrap_or(0), replies))
}

fn parse(reply: &[i64]) -> Result<Reply, String> {
    let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    match reply {
        [1, wait] => Ok(Reply::Admitted {
            wait: micros(*wait),
        }),
        [0, retry] => Ok(Reply::NoSlot {
            retry: micros(*retry),
        }),
        [-1, index] if *index >= 1 => Ok(Reply::TooLarge {
            index: usize::try_from(*index - 1).unwrap_or(usize::MAX),
        }),
        other => Err(format!(
            "unexpected reply from the limiter script: {other:?}"
        )),
    }
}
