//! A real `redis-server` per test, on a unix socket in a temp dir, killed on drop.
//!
//! Not installed means the test FAILS with a message saying how to install it: a shared
//! limiter that is never tested against a real server must not pass CI.

#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "ratelimited-redis-{}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer { child: None, dir };
        server.restart();
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Starts the server (again), on the same socket, empty.
    pub fn restart(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        self.start_again();
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
        self.start_again();
    }

    fn start_again(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
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
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
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
        Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server (package redis-tools)")
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
        let mut child = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
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
