//! Strategy (g): the requests of (a) sent through a `reqwest_middleware` client with
//! `ratelimited`'s `RateLimit` middleware instead of an annotated function (real HTTP only; the
//! middleware sits on an HTTP client). Built with the `reqwest-middleware` feature.

use ratelimited::integrations::reqwest_middleware::RateLimit;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

use crate::workload::Job;

/// `POST {base}/chat/completions` through the middleware.
pub(crate) struct MiddlewareClient {
    client: ClientWithMiddleware,
    url: String,
}

impl MiddlewareClient {
    pub(crate) fn new(http: reqwest::Client, base_url: &str) -> Self {
        MiddlewareClient {
            // The limits, tier and retries from the current registry, as the attribute's.
            client: ClientBuilder::new(http).with(RateLimit::from_env()).build(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
        }
    }

    /// One job: the middleware reserves, retries and settles; an error status left after its
    /// retries is a loss.
    pub(crate) async fn send(&self, job: &Job) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .json(&job.body())
            .send()
            .await
            .map_err(|e| format!("middleware: {e}"))?;
        let status = response.status();
        // Read to the end: the reservation settles from the usage in the body.
        let body = response.text().await.map_err(|e| format!("body: {e}"))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {body}"))
        }
    }
}
