//! A real `redis-server` per test, on a unix socket in a temp dir, killed on drop; or a real
//! Redis Cluster of three such servers on loopback TCP ports.
//!
//! Not installed means the test FAILS with a message saying how to install it: a shared
//! limiter that is never tested against a real server must not pass CI.

#![allow(dead_code)] // each test file uses a part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    dir: PathBuf,
    /// A Redis Cluster node listens on this port of 127.0.0.1; a lone server on a unix
    /// socket in `dir`.
    port: Option<u16>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            dir: temp_dir(),
            port: None,
        };
        server.restart();
        server
    }

    /// A cluster-enabled server on a free port of 127.0.0.1 (its cluster bus on the port
    /// 10000 above), not yet part of any cluster.
    fn start_cluster_node() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            dir: temp_dir(),
            port: None,
        };
        // Another test may take the port between our check and the server's bind: then the
        // server exits at once, and another port is tried.
        for _ in 0..5 {
            server.port = Some(free_port());
            if server.try_start() {
                return server;
            }
        }
        panic!("no free loopback port for a Redis Cluster node after 5 tries");
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("redis://127.0.0.1:{port}"),
            None => format!("redis+unix://{}", self.socket().display()),
        }
    }

    /// Starts the server (again), on the same socket or port, empty.
    pub fn restart(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        assert!(self.try_start(), "redis-server exited at start");
    }

    /// Saves the data set to disk and kills the server: [`restart_saved`] brings it back with
    /// its state, as a server with persistence comes back after a crash.
    ///
    /// [`restart_saved`]: RedisServer::restart_saved
    pub fn save_and_kill(&mut self) {
        assert_eq!(self.cli(&["SAVE"]).trim(), "OK");
        self.kill();
    }

    /// Starts the server again with the state [`save_and_kill`](RedisServer::save_and_kill)
    /// saved.
    pub fn restart_saved(&mut self) {
        assert!(self.dir.join("dump.rdb").exists(), "nothing saved");
        assert!(self.try_start(), "redis-server exited at start");
    }

    /// Starts the server and waits until it answers; false if it exited first.
    fn try_start(&mut self) -> bool {
        let _ = std::fs::remove_file(self.socket());
        let mut command = Command::new("redis-server");
        match self.port {
            Some(port) => {
                // Kept across a restart: the node comes back with its id and slots.
                let config = self.dir.join(format!("nodes-{port}.conf"));
                command
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .arg(config);
            }
            None => {
                command
                    .args(["--port", "0", "--unixsocket"])
                    .arg(self.socket());
            }
        }
        let child = command
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server` ({e}): the Redis tests need it installed \
                     (Debian/Ubuntu: `apt-get install -y redis-server`; .ci/run does this)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            if let Some(child) = &mut self.child {
                if child.try_wait().unwrap().is_some() {
                    self.child = None;
                    return false;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Kills the server at once (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command with `redis-cli`, returning its output.
    pub fn cli(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run_cli(args).stdout).into_owned()
    }

    fn run_cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command()
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server (package redis-tools)")
    }

    /// `redis-cli` pointed at this server (no `-c`: a cluster node answers for itself).
    fn cli_command(&self) -> Command {
        let mut command = Command::new("redis-cli");
        match self.port {
            Some(port) => command.args(["-h", "127.0.0.1", "-p", &port.to_string()]),
            None => command.arg("-s").arg(self.socket()),
        };
        command
    }
}

fn temp_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "ratelimited-redis-{}-{nanos:x}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port of 127.0.0.1 free now, with the port 10000 above it (a cluster node's bus) free too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port <= u16::MAX - 10_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A Redis Cluster of three masters on 127.0.0.1 (no replicas), every slot assigned, each
/// node killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_cluster_node()).collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port.unwrap()))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli comes with redis-server (package redis-tools)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// The first node's URL: the client finds the others from it.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// Every node's URL, comma-separated.
    pub fn seeds(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    /// The slot of `key`.
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli_value(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap()
    }

    /// The node that serves `slot`, as that node itself says.
    pub fn owner(&self, slot: u16) -> &RedisServer {
        let owners: Vec<&RedisServer> =
            self.nodes.iter().filter(|node| node.serves(slot)).collect();
        assert_eq!(owners.len(), 1, "slot {slot} has {} owners", owners.len());
        owners[0]
    }

    /// Moves `slot` and its keys to `to` as `redis-cli --cluster reshard` does: IMPORTING on
    /// the target, MIGRATING on the source, MIGRATE of every key, then the new owner on every
    /// node. Nothing must be writing to the slot meanwhile.
    pub fn move_slot(&self, slot: u16, to: &RedisServer) {
        let from = self.owner(slot);
        assert_ne!(from.port, to.port, "slot {slot} is already there");
        let slot_arg = slot.to_string();
        let id = |node: &RedisServer| node.cli_value(&["CLUSTER", "MYID"]).trim().to_owned();
        let (from_id, to_id) = (id(from), id(to));
        let ok = |node: &RedisServer, args: &[&str]| {
            let answer = node.cli_value(args);
            assert_eq!(answer.trim(), "OK", "{args:?}");
        };
        ok(
            to,
            &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id],
        );
        ok(
            from,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id],
        );
        let to_port = to.port.unwrap().to_string();
        loop {
            let keys = from.cli(&["CLUSTER", "GETKEYSINSLOT", &slot_arg, "100"]);
            let keys: Vec<&str> = keys
                .lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            migrate.extend(&keys);
            ok(from, &migrate);
        }
        // The new owner first, so the slot is never without one (the order the docs give).
        ok(to, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
        ok(from, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
        for node in &self.nodes {
            if node.port != from.port && node.port != to.port {
                ok(node, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
            }
        }
        assert_eq!(self.owner(slot).port, to.port);
        self.wait_until_ok();
    }

    /// Polls `CLUSTER INFO` on every node until each says `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            while !node
                .cli(&["CLUSTER", "INFO"])
                .lines()
                .any(|line| line.trim() == "cluster_state:ok")
            {
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not reach cluster_state:ok within 20 s on {}",
                    node.url()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl RedisServer {
    /// Whether this cluster node serves `slot`, from its own line of `CLUSTER NODES`.
    pub fn serves(&self, slot: u16) -> bool {
        let nodes = self.cli_value(&["CLUSTER", "NODES"]);
        let line = nodes
            .lines()
            .find(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("myself")))
            .expect("CLUSTER NODES has a `myself` line");
        // `<id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slot or range>...`;
        // `[slot->-id]` entries are migrations, not ownership.
        line.split(' ').skip(8).any(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            match (low.parse::<u16>(), high.parse::<u16>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&slot),
                _ => false,
            }
        })
    }

    /// How many keys this server holds.
    pub fn dbsize(&self) -> u64 {
        self.cli_value(&["DBSIZE"]).trim().parse().unwrap()
    }
}

/// Polls `condition` every 5 ms until it holds; panics naming `what` after 5 s. For effects that
/// reach the real server asynchronously (a settle sent without waiting), instead of a sleep.
#[allow(dead_code)] // not every test binary that includes this module polls
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Runs one command with `redis-cli` and returns its output, which must not be empty: a
    /// failed `redis-cli` (its message is shown) is run again, twice at most.
    pub fn cli_value(&self, args: &[&str]) -> String {
        let mut failure = String::new();
        for _ in 0..3 {
            let output = self.run_cli(args);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            if !stdout.trim().is_empty() {
                return stdout;
            }
            failure = String::from_utf8_lossy(&output.stderr).into_owned();
        }
        panic!("redis-cli {args:?} answered nothing: {failure}");
    }

    /// Units in use at `key`, a bucket of `capacity` units a `window` unless its value names
    /// its own scale (`tat@capacity/window_us`, after a limit change), on the server's clock
    /// (its `TIME` and the stored theoretical arrival time, read in one script).
    pub fn units_in_use(&self, key: &str, capacity: u64, window: Duration) -> f64 {
        let script = "local t = redis.call('TIME') \
                      return {t[1] * 1000000 + t[2], redis.call('GET', KEYS[1]) or '0'}";
        let out = self.cli_value(&["EVAL", script, "1", key]);
        let mut lines = out.lines().map(str::trim);
        let now: i64 = lines.next().unwrap().parse().unwrap();
        let value = lines.next().unwrap();
        let (tat, scale) = value.split_once('@').unwrap_or((value, ""));
        let (capacity, window_us) = match scale.split_once('/') {
            Some((c, w)) => (c.parse::<f64>().unwrap(), w.parse::<f64>().unwrap()),
            None => (capacity as f64, window.as_micros() as f64),
        };
        let tat: i64 = tat.parse().unwrap();
        (tat - now).max(0) as f64 * capacity / window_us
    }

    /// How many members the sorted set at `key` has (the leases of a family).
    pub fn zcard(&self, key: &str) -> u64 {
        self.cli_value(&["ZCARD", key]).trim().parse().unwrap()
    }

    /// How many times the server ran `command` (lowercase), from `INFO commandstats`.
    pub fn calls(&self, command: &str) -> u64 {
        let stats = self.cli_value(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{command}:calls=");
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    }

    /// How many error replies the server sent in all, from `INFO stats`.
    pub fn error_replies(&self) -> u64 {
        let stats = self.cli_value(&["INFO", "stats"]);
        stats
            .lines()
            .find_map(|line| line.strip_prefix("total_error_replies:"))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// Starts `redis-cli MONITOR` and returns once the server streams every command to it.
    pub fn monitor(&self) -> Monitor {
        let mut child = self
            .cli_command()
            .arg("MONITOR")
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli comes with redis-server (package redis-tools)");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut lines, &mut first).unwrap();
        assert_eq!(first.trim(), "OK", "MONITOR did not start");
        Monitor { child, lines }
    }
}

/// A running `redis-cli MONITOR`: the commands the server ran, in order.
pub struct Monitor {
    child: Child,
    lines: std::io::BufReader<std::process::ChildStdout>,
}

impl Monitor {
    /// The arguments of the next command the server ran whose name is `name` and with an
    /// argument equal to `arg` (blocks until one comes).
    pub fn next(&mut self, name: &str, arg: &str) -> Vec<String> {
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut self.lines, &mut line).unwrap();
            assert!(n > 0, "MONITOR ended before a {name} with {arg:?}");
            // `<time> [<db> <client>] "NAME" "arg" ...`
            let Some((_, quoted)) = line.split_once("] ") else {
                continue;
            };
            let args = unquote(quoted);
            if args.first().is_some_and(|n| n.eq_ignore_ascii_case(name))
                && args.iter().any(|a| a == arg)
            {
                return args;
            }
        }
    }
}

/// MONITOR's `"a" "b\"c"` as `["a", "b\"c"]` (the escapes our keys and arguments can hold).
fn unquote(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.trim().chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => arg.push(chars.next().unwrap()),
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    args
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A waker that counts as a signal: a test polls a future by hand with it, and awaits
/// [`Woken::notified`] to act between the wake-up and the next poll (a waiter cancelled after
/// its answer arrived, before it read it).
pub struct Woken(tokio::sync::Notify);

impl Woken {
    pub fn new() -> std::sync::Arc<Woken> {
        std::sync::Arc::new(Woken(tokio::sync::Notify::new()))
    }

    /// Polls `future` once with this waker.
    pub fn poll<F: std::future::Future + Unpin>(
        self: &std::sync::Arc<Self>,
        future: &mut F,
    ) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::from(self.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        std::pin::Pin::new(future).poll(&mut cx)
    }

    /// Returns once the future polled last has been woken.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

impl std::task::Wake for Woken {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.notify_one();
    }
}

/// Microseconds since the Unix epoch: the clock the worker processes of a test share.
pub fn epoch_us() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// Worker processes: the test binary run again as `--exact <test>`, with `var` set to each
/// worker's spec. Each prints `READY` once set up, waits for the start its parent writes to
/// `go` (µs since the epoch), then works and prints its lines.
pub struct Workers {
    children: Vec<(Child, std::io::BufReader<std::process::ChildStdout>)>,
    go: PathBuf,
}

impl Workers {
    /// Starts one worker per spec and waits until every one is `READY`.
    pub fn start(test: &str, var: &str, go: PathBuf, specs: Vec<String>) -> Workers {
        use std::io::BufRead;
        std::fs::write(&go, "").unwrap();
        let mut children: Vec<_> = specs
            .into_iter()
            .map(|spec| {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", test, "--nocapture", "--test-threads=1"])
                    .env(var, spec)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
                (child, stdout)
            })
            .collect();
        for (_, reader) in &mut children {
            let mut line = String::new();
            while !line.contains("READY") {
                line.clear();
                assert!(
                    reader.read_line(&mut line).unwrap() > 0,
                    "a worker exited early"
                );
            }
        }
        Workers { children, go }
    }

    /// Lets every worker go at `start`.
    pub fn go(&self, start: u64) {
        std::fs::write(&self.go, start.to_string()).unwrap();
    }

    /// Each worker's output once it exits, in order, on blocking threads; a worker that
    /// failed fails the test with its output.
    pub fn outputs(self) -> Vec<tokio::task::JoinHandle<String>> {
        let go = self.go;
        let outputs = self
            .children
            .into_iter()
            .enumerate()
            .map(|(worker, (child, mut reader))| {
                let go = go.clone();
                tokio::task::spawn_blocking(move || {
                    let mut stdout = String::new();
                    std::io::Read::read_to_string(&mut reader, &mut stdout).unwrap();
                    let output = child.wait_with_output().unwrap();
                    let _ = std::fs::remove_file(&go);
                    assert!(
                        output.status.success(),
                        "worker {worker} failed: {stdout}{}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                    stdout
                })
            })
            .collect();
        outputs
    }
}

/// In a worker: waits until the parent writes the start to `go`, and returns it.
pub async fn wait_for_go(go: &std::path::Path) -> u64 {
    loop {
        if let Some(start) = std::fs::read_to_string(go)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        {
            return start;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The limiter of OpenAI model `model` (limits from `vars`, at headroom 1) on `config`.
pub fn shared_limiter(
    config: ratelimited::redis::RedisConfig,
    model: &str,
    vars: &[(&str, &str)],
) -> ratelimited::Limiter {
    let mut vars = vars.to_vec();
    vars.push(("RATE_LIMITED_HEADROOM", "1"));
    config
        .registry_with_env(vars)
        .limiter_with(model, Some("openai"), None)
        .unwrap()
        .limiter
}
