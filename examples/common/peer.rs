//! What the benchmark examples share for their peers and real-HTTP runs: the retry hint a
//! peer honours, and the mock server on a runtime of its own.

use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::testing::{MockProvider, MockServer};

/// The server's wait: `retry-after-ms`, else `retry-after` in seconds.
pub fn retry_after(error: &HttpError) -> Option<Duration> {
    let header = |name: &str| {
        error
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    header("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1_000.0))
        .or_else(|| header("retry-after").map(Duration::from_secs_f64))
}

/// The mock server on a runtime of its own, as a remote server would be: its arrival times
/// (which set its buckets) do not wait for the client's thread.
pub struct ServerThread {
    pub server: MockServer,
    // Dropped after the server, which stops its task on this runtime.
    _runtime: tokio::runtime::Runtime,
}

impl ServerThread {
    pub fn start(provider: MockProvider) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let server = runtime
            .block_on(MockServer::serve(provider))
            .expect("bind 127.0.0.1");
        ServerThread {
            server,
            _runtime: runtime,
        }
    }
}
