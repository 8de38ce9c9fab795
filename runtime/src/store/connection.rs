//! One family's connection to Redis: the script, a bound on every call, and a breaker that
//! stops calling a Redis that does not answer and probes for its return.
//!
//! A failure is one of two kinds. Redis is *down* when it does not answer (I/O, timeouts, a
//! dropped connection) or answers that it cannot serve now (loading, busy, out of memory, a
//! read-only replica, cluster redirections): the breaker opens. Redis *rejected* a call when it
//! answered that call with an error of its own (a script error, a value of the wrong type, a
//! reply the script should not give): the call gets the failure policy, but Redis is up and the
//! breaker stays closed, so one bad call never moves every call to the fallback.

use std::sync::Mutex;
use std::time::Duration;

use once_cell::sync::Lazy;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{Client, ConnectionInfo, IntoConnectionInfo, Script};
use tokio::time::Instant;

use crate::config::{redact_url, split_urls, REDIS_URL_VAR};
use crate::units::error::Error;

use super::config::RedisConfig;
use crate::sync::Locked;

/// Reserve, adjust, hold, tighten and renew: one script, so every family's keys change
/// atomically on the server's clock. `Script` sends EVALSHA and reloads the script when the
/// server answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
static FAMILY_SCRIPT: Lazy<Script> = Lazy::new(|| Script::new(FAMILY_LUA));
/// The script's text, sent with EVAL to a cluster node that does not have it yet.
const FAMILY_LUA: &str = include_str!("family.lua");
/// The script of the tenants' budgets shared by the fleet (see `budget.rs`).
static BUDGET_SCRIPT: Lazy<Script> = Lazy::new(|| Script::new(BUDGET_LUA));
const BUDGET_LUA: &str = include_str!("budget.lua");

/// Which script a call runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Lua {
    /// `family.lua`: a family's buckets, leases and holds.
    #[default]
    Family,
    /// `budget.lua`: a tenant's budget.
    Budget,
}

impl Lua {
    fn script(self) -> (&'static Script, &'static str) {
        match self {
            Lua::Family => (&FAMILY_SCRIPT, FAMILY_LUA),
            Lua::Budget => (&BUDGET_SCRIPT, BUDGET_LUA),
        }
    }
}

/// While the breaker is open, one caller per interval tries Redis again.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The script's answer to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Done; a reservation sleeps `wait` before its request goes.
    Admitted { wait: Duration },
    /// No concurrency slot is free; the earliest lease expires after `retry`.
    NoSlot { retry: Duration },
    /// The request can never fit bucket `index` (0-based, in the order the buckets were sent).
    TooLarge { index: usize },
    /// It would have to wait `wait`, longer than the call allowed: nothing was charged.
    WouldWait { wait: Duration },
    /// Its tenant's cap has no room for `wait`: nothing was charged, and the batch went on.
    Capped { wait: Duration },
}

/// Why a call did not get an answer from Redis.
#[derive(Clone, Debug)]
pub(crate) enum Unavailable {
    /// The breaker is open: Redis was not asked.
    Open,
    /// Asked, and it failed or did not answer in time: Redis is down (the breaker opened).
    /// The call may have run on the server all the same.
    Failed(String),
    /// Redis answered this call with an error (a script error, a foreign value in a key):
    /// nothing to do with its health, and the breaker stays as it was.
    Rejected(String),
}

impl Unavailable {
    pub(crate) fn message(&self) -> String {
        match self {
            Unavailable::Open => "Redis did not answer recently (the breaker is open)".to_owned(),
            Unavailable::Failed(why) | Unavailable::Rejected(why) => why.clone(),
        }
    }
}

/// The arguments of one script call.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) keys: Vec<std::sync::Arc<str>>,
    pub(crate) args: Vec<String>,
    /// Must not run twice (a settle's signed adjustment): never sent again after a failure
    /// that may have reached the server. The others may: holds and tightenings only raise,
    /// renewals and limit changes set, voids are idempotent, and a batch sent again is
    /// answered from the record of its process's last batch, charging nothing more.
    pub(crate) once: bool,
    /// The script it runs.
    pub(crate) lua: Lua,
}

/// What went wrong with a call, in words, and whether it means Redis is down.
struct Failure {
    why: String,
    down: bool,
}

pub(crate) struct Store {
    connection: Connection,
    timeout: Duration,
    breaker: Mutex<Breaker>,
    /// Told when Redis answers again after it failed.
    back: tokio::sync::Notify,
    /// For messages: the URL without its password.
    url: String,
}

/// One Redis server, or the nodes of a Redis Cluster.
enum Connection {
    /// One reconnecting multiplexed connection.
    Single(Box<LazySingle>),
    /// The nodes of a Redis Cluster (`RATE_LIMITED_REDIS_CLUSTER`).
    Cluster(Box<Cluster>),
}

/// The reconnecting connection to one server, made by the first call (on the tokio runtime
/// that runs it: a family may be made before any runtime exists, as a registry is).
struct LazySingle {
    client: Client,
    config: ConnectionManagerConfig,
    manager: once_cell::sync::OnceCell<ConnectionManager>,
}

impl LazySingle {
    fn get(&self) -> redis::RedisResult<ConnectionManager> {
        self.manager
            .get_or_try_init(|| {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .cloned()
    }
}

/// A Redis Cluster: the family's keys share one hash tag, so each call goes to the one node
/// that serves its slot, followed through MOVED and ASK redirections.
struct Cluster {
    /// Retries what the cluster answers while it reshapes (a redirection, TRYAGAIN, a node
    /// loading or down) and a dropped or silent connection, within the call's timeout: for
    /// calls that may run twice.
    retrying: LazyCluster,
    /// Retries nothing: a call that must not run twice goes here, and [`Cluster::script`]
    /// sends it again only after an answer that says it did not run.
    single_shot: LazyCluster,
}

/// A cluster connection made by the first call that needs it: a process starts while the
/// cluster is down, and a call that could not connect leaves the next one to try again.
struct LazyCluster {
    client: ClusterClient,
    connection: tokio::sync::OnceCell<ClusterConnection>,
}

impl LazyCluster {
    fn new(seeds: &[ConnectionInfo], timeout: Duration, retries: u32) -> redis::RedisResult<Self> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let client = ClusterClientBuilder::new(seeds.to_vec())
            // Small script calls stall behind Nagle's algorithm otherwise.
            .tcp_settings(TcpSettings::default().set_nodelay(true))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(retries)
            // The defaults wait 1.3 s or more before a retry (TRYAGAIN, CLUSTERDOWN, LOADING),
            // far past our timeout: a few milliseconds, growing up to the timeout.
            .min_retry_wait(1)
            .max_retry_wait(timeout_ms.max(2))
            .build()?;
        Ok(LazyCluster {
            client,
            connection: tokio::sync::OnceCell::new(),
        })
    }

    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl Cluster {
    /// Runs the script on the node that serves the family's slot.
    async fn script(&self, call: &Call) -> redis::RedisResult<Vec<i64>> {
        if !call.once {
            return evaluate(&mut self.retrying.get().await?, call).await;
        }
        // The cluster client sends a command again after a dropped connection or a response
        // timeout, when it may have run: not this one. Redirections and a reshaping cluster
        // say it did not run, and a slot migration (ASK) ends within milliseconds.
        let mut connection = self.single_shot.get().await?;
        loop {
            match evaluate(&mut connection, call).await {
                Err(e) if did_not_run(&e) => {
                    if e.kind() != redis::ErrorKind::Server(redis::ServerErrorKind::Moved) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                answer => return answer,
            }
        }
    }
}

/// EVALSHA, then EVAL where the node does not have the script (NOSCRIPT: a node new to the
/// slot, restarted or flushed), which loads it on that node. `Script::invoke_async` would
/// load it with SCRIPT LOAD on every node instead, which fails while any node is down.
async fn evaluate(connection: &mut ClusterConnection, call: &Call) -> redis::RedisResult<Vec<i64>> {
    let command = |name: &str, script: &str| {
        let mut command = redis::cmd(name);
        command.arg(script).arg(call.keys.len());
        for key in &call.keys {
            command.arg(&**key);
        }
        for arg in &call.args {
            command.arg(arg);
        }
        command
    };
    let (script, text) = call.lua.script();
    let evalsha = command("EVALSHA", script.get_hash());
    match evalsha.query_async(connection).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            command("EVAL", text).query_async(connection).await
        }
        answer => answer,
    }
}

/// Whether a cluster's `error` says the command never ran: sent again, it runs at most once.
fn did_not_run(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        error.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
    )
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
        let connection = if config.is_cluster() {
            Connection::Cluster(Box::new(Self::cluster(config)?))
        } else {
            Connection::Single(Box::new(Self::single(config)?))
        };
        Ok(Store {
            connection,
            timeout: config.call_timeout(),
            breaker: Mutex::new(Breaker::default()),
            back: tokio::sync::Notify::new(),
            url: redact_url(config.url()),
        })
    }

    fn single(config: &RedisConfig) -> Result<LazySingle, Error> {
        let bad_url = |e: redis::RedisError| {
            Error::config(
                REDIS_URL_VAR,
                redact_url(config.url()),
                format!("a Redis URL the client accepts ({e})"),
            )
        };
        if split_urls(config.url()).len() > 1 {
            return Err(Error::config(
                REDIS_URL_VAR,
                redact_url(config.url()),
                "one Redis URL (a list of Redis Cluster nodes needs RATE_LIMITED_REDIS_CLUSTER=true)",
            ));
        }
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
        Ok(LazySingle {
            client,
            config: manager,
            manager: once_cell::sync::OnceCell::new(),
        })
    }

    /// The client finds every node from any seed that answers.
    fn cluster(config: &RedisConfig) -> Result<Cluster, Error> {
        let bad_url = |e: redis::RedisError| {
            Error::config(
                REDIS_URL_VAR,
                redact_url(config.url()),
                format!(
                    "one or more Redis Cluster node URLs, comma-separated, that the client \
                     accepts ({e})"
                ),
            )
        };
        let seeds = split_urls(config.url())
            .into_iter()
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_url)?;
        // Cluster nodes know each other by host and port: a socket path names no node.
        if seeds
            .iter()
            .any(|seed| matches!(seed.addr(), redis::ConnectionAddr::Unix(_)))
        {
            return Err(Error::config(
                REDIS_URL_VAR,
                redact_url(config.url()),
                "Redis Cluster node URLs with a host and port (redis:// or rediss://), \
                 comma-separated; not a unix socket",
            ));
        }
        let timeout = config.call_timeout();
        Ok(Cluster {
            retrying: LazyCluster::new(&seeds, timeout, 16).map_err(bad_url)?,
            single_shot: LazyCluster::new(&seeds, timeout, 0).map_err(bad_url)?,
        })
    }

    /// Runs the script once, bounded by the timeout; any failure (I/O, timeout, a script or
    /// cluster error) opens the breaker and is never read as an admission.
    pub(crate) async fn run(&self, call: &Call) -> Result<Reply, Unavailable> {
        self.invoke(call, parse).await
    }

    /// Runs a `batch` call on `buckets` buckets: what the script answered.
    pub(crate) async fn run_batch(
        &self,
        call: &Call,
        buckets: usize,
    ) -> Result<Batch, Unavailable> {
        self.invoke(call, |reply| parse_batch(reply, buckets)).await
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
        // fails at once (and reconnects), usually without reaching any server. Try once more
        // on the new connection rather than waiting out another probe interval, if running
        // the call twice is harmless.
        if let Ok(Err(e)) = &answer {
            if !call.once && self.is_down() && (e.is_connection_dropped() || e.is_io_error()) {
                answer = self.call_once(call).await;
            }
        }
        let reply = self.describe(answer).and_then(|reply| {
            parse(&reply).map_err(|why| Failure {
                why: format!("Redis at {} answered {why}", self.url),
                down: false,
            })
        });
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
        let work = async {
            match &self.connection {
                Connection::Single(single) => pipeline.query_async(&mut single.get()?).await,
                Connection::Cluster(cluster) => {
                    pipeline
                        .query_async(&mut cluster.retrying.get().await?)
                        .await
                }
            }
        };
        let answer = tokio::time::timeout(self.timeout, work).await;
        let reply = self.describe(answer);
        self.outcome(reply)
    }

    /// An answer, or what went wrong.
    fn describe<T>(
        &self,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, Failure> {
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(Failure {
                why: format!("Redis at {} failed: {e}", self.url),
                down: means_down(&e),
            }),
            Err(_) => Err(Failure {
                why: format!(
                    "Redis at {} did not answer within {:?}",
                    self.url, self.timeout
                ),
                down: true,
            }),
        }
    }

    /// Closes the breaker on an answer (a rejection is one), opens it when Redis is down.
    fn outcome<T>(&self, reply: Result<T, Failure>) -> Result<T, Unavailable> {
        match reply {
            Ok(reply) => {
                self.answered();
                Ok(reply)
            }
            Err(Failure { why, down: true }) => {
                self.failed(&why);
                Err(Unavailable::Failed(why))
            }
            Err(Failure { why, down: false }) => {
                self.answered();
                tracing::warn!(
                    url = %self.url,
                    error = %why,
                    "Redis refused a rate-limiter call: that call used the failure policy"
                );
                Err(Unavailable::Rejected(why))
            }
        }
    }

    /// One script call, bounded by the timeout.
    async fn call_once(
        &self,
        call: &Call,
    ) -> Result<redis::RedisResult<Vec<i64>>, tokio::time::error::Elapsed> {
        let work = async {
            match &self.connection {
                Connection::Single(single) => {
                    let mut manager = single.get()?;
                    let mut invocation = call.lua.script().0.prepare_invoke();
                    for key in &call.keys {
                        invocation.key(&**key);
                    }
                    for arg in &call.args {
                        invocation.arg(arg);
                    }
                    invocation.invoke_async(&mut manager).await
                }
                Connection::Cluster(cluster) => cluster.script(call).await,
            }
        };
        tokio::time::timeout(self.timeout, work).await
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

    /// Resolves when Redis answers again after a failure: created before checking
    /// [`is_down`](Store::is_down), it misses no return.
    pub(crate) fn back(&self) -> tokio::sync::futures::Notified<'_> {
        self.back.notified()
    }

    fn answered(&self) {
        let mut breaker = self.breaker.locked();
        if let Some(since) = breaker.open_since.take() {
            self.back.notify_waiters();
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

/// Whether `error` means Redis cannot serve calls now, rather than that it refused this one.
fn means_down(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        // An error raised by the script, or a key holding another type than it expects.
        ErrorKind::Server(ServerErrorKind::ResponseError) => false,
        ErrorKind::Extension => !matches!(error.code(), Some("WRONGTYPE")),
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => false,
        // I/O, timeouts, loading, busy, redirections, a read-only replica, authentication.
        _ => true,
    }
}

/// The script's answer to a batch.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The server's clock, µs since the Unix epoch.
    pub(crate) now: u64,
    /// The store's epoch (see `family.lua`; 0 for a foreign value).
    pub(crate) epoch: u64,
    /// One reply per request the script handled, in order: none when the store's epoch is
    /// not the one the batch was sent with (the store lost its state; nothing was charged).
    pub(crate) replies: Vec<Reply>,
    /// Per reply, for an admission, its marks: each bucket's units in use just after its
    /// charge, in the order the buckets were sent (empty for the other replies).
    pub(crate) marks: Vec<Vec<u64>>,
}

fn parse_batch(reply: &[i64], buckets: usize) -> Result<Batch, String> {
    let [now, epoch, rest @ ..] = reply else {
        return Err(format!("a short reply from the limiter script: {reply:?}"));
    };
    let mut rest = rest;
    if *epoch == 0 && rest.is_empty() {
        return Err("no request handled: the batch was given up before it ran".to_owned());
    }
    let (mut replies, mut marks) = (Vec::new(), Vec::new());
    while !rest.is_empty() {
        let Some((head, tail)) = rest.split_at_checked(2) else {
            return Err(format!("a short reply from the limiter script: {reply:?}"));
        };
        let parsed = parse(head)?;
        rest = tail;
        let mut levels = Vec::new();
        if let Reply::Admitted { .. } = parsed {
            let Some((taken, tail)) = rest.split_at_checked(buckets) else {
                return Err(format!("an admission without its marks: {reply:?}"));
            };
            levels = taken
                .iter()
                .map(|&l| u64::try_from(l).unwrap_or(0))
                .collect();
            rest = tail;
        }
        replies.push(parsed);
        marks.push(levels);
    }
    Ok(Batch {
        now: u64::try_from(*now).unwrap_or(0),
        epoch: u64::try_from(*epoch).unwrap_or(0),
        replies,
        marks,
    })
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
        [2, wait] => Ok(Reply::WouldWait {
            wait: micros(*wait),
        }),
        [3, wait] => Ok(Reply::Capped {
            wait: micros(*wait),
        }),
        other => Err(format!(
            "an unexpected reply from the limiter script: {other:?}"
        )),
    }
}
