//! [`reqwest_middleware`] 0.5 (feature `reqwest-middleware`): [`RateLimit`], a middleware
//! that limits the LLM requests a shared `ClientWithMiddleware` sends, as `#[rate_limited]`
//! limits a function's calls.
//!
//! ```no_run
//! # use ratelimited_runtime::facade as ratelimited;
//! use ratelimited::integrations::reqwest_middleware::RateLimit;
//! use reqwest_middleware::ClientBuilder;
//! use serde_json::{json, Value};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RateLimit::from_env())
//!     .build();
//! // Waits its turn on gpt-4o-mini's family, retries 429s as the server asks, settles from
//! // the answer's `usage`: the code that sends it is unchanged.
//! let answer: Value = client
//!     .post("https://api.openai.com/v1/chat/completions")
//!     .bearer_auth(std::env::var("OPENAI_API_KEY")?)
//!     .json(&json!({
//!         "model": "gpt-4o-mini",
//!         "max_tokens": 200,
//!         "messages": [{"role": "user", "content": "Name three primes."}]
//!     }))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! # let _ = answer; Ok(()) }
//! ```
//!
//! For each request it sees, [`RateLimit`]:
//! 1. recognises it ([`Routes`]: OpenAI and Azure chat completions,
//!    responses and embeddings, Anthropic messages, Gemini `generateContent` and
//!    `streamGenerateContent`) and reads the model, the prompt, `max_tokens` and `n` from its
//!    JSON body; anything else passes through untouched (or, with
//!    [`Unrecognised::LimitAs`](super::llm::Unrecognised::LimitAs), counts as one request);
//! 2. reserves on the model's limit family, in the [current](crate::Registry::current)
//!    registry unless [`Routes::registry`](super::llm::Routes::registry) names one;
//! 3. sends it through the rest of the stack; a 429 or a transient failure (5xx, 408, 529, a
//!    connection reset) is retried exactly as the attribute retries it (`retry-after-ms`,
//!    `retry-after`, the body's hint, else backoff; never a quota error), the request cloned
//!    for each attempt;
//! 4. settles the reservation from the `usage` in the JSON answer and applies its rate-limit
//!    headers; a `text/event-stream` answer holds the reservation until its body ends and
//!    settles from the usage its events report (send `stream_options.include_usage` to OpenAI).
//!
//! A whole answer is read into memory to settle it, then handed back unchanged. When the
//! limiter gives up (retries spent, a retry-after over `RATE_LIMITED_MAX_RETRY_AFTER`, a
//! request too large for the limit, an unknown model) the request fails with
//! `reqwest_middleware::Error::Middleware` holding the [`Error`](crate::Error); an answer that
//! is not retried (a 400, an `insufficient_quota` 429) comes back as the response it is.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use http::Extensions;
use reqwest::{Request, Response, ResponseBuilderExt};
use reqwest_middleware::{Middleware, Next};

use crate::answers::classify::{Classify, Verdict};
use crate::integrations::exchange::{classify_transport, Plan, Step};
use crate::integrations::llm::Routes;

/// A [`reqwest_middleware::Middleware`] that rate-limits the LLM requests it sees (see the
/// [module](self)).
#[derive(Clone, Debug)]
pub struct RateLimit {
    routes: Arc<Routes>,
}

impl RateLimit {
    /// Every known LLM endpoint recognised, other requests passed through, the limits, tier
    /// and retries from the environment (the current registry), as `#[rate_limited]` reads
    /// them.
    pub fn from_env() -> Self {
        RateLimit::new(Routes::new())
    }

    /// With `routes`: mapped hosts and deployments, what to do with other requests, the
    /// registry, tier and retries.
    pub fn new(routes: Routes) -> Self {
        RateLimit {
            routes: Arc::new(routes),
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::from_env()
    }
}

#[async_trait::async_trait]
impl Middleware for RateLimit {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let host = req.url().host_str().unwrap_or_default().to_owned();
        let host = match req.url().port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let body = req.body().and_then(reqwest::Body::as_bytes);
        let resendable = body.is_some() || req.body().is_none();
        let plan = Plan::of(
            &self.routes,
            req.method().as_str(),
            &host,
            req.url().path(),
            body,
            resendable,
        )
        .map_err(reqwest_middleware::Error::middleware)?;
        let mut exchange = match plan {
            Plan::Pass => return next.run(req, extensions).await,
            Plan::Limit(exchange) => exchange,
        };
        let mut original = Some(req);
        loop {
            let attempt = exchange
                .acquire()
                .await
                .map_err(reqwest_middleware::Error::middleware)?;
            let request = match original.as_ref().and_then(Request::try_clone) {
                Some(copy) => copy,
                // Not resendable: opened with no retry, so this is the only attempt.
                None => original
                    .take()
                    .ok_or_else(|| reqwest_middleware::Error::middleware(NotResendable))?,
            };
            let sent = next.clone().run(request, extensions).await;
            let mut url = None;
            let sent = sent
                .map(|response| {
                    url = Some(response.url().clone());
                    http::Response::<reqwest::Body>::from(response)
                })
                .map_err(Transport);
            match exchange
                .answer(attempt, sent)
                .await
                .map_err(reqwest_middleware::Error::middleware)?
            {
                Step::Retry => {}
                Step::Failed(Transport(error)) => return Err(error),
                Step::Done(response) => {
                    let (mut parts, body) = response.into_parts();
                    if let Some(url) = url {
                        // A response rebuilt from parts keeps its URL in its extensions.
                        let (carrier, ()) = http::Response::builder()
                            .url(url)
                            .body(())
                            .map_err(reqwest_middleware::Error::middleware)?
                            .into_parts();
                        parts.extensions.extend(carrier.extensions);
                    }
                    let body = reqwest::Body::wrap(body);
                    return Ok(Response::from(http::Response::from_parts(parts, body)));
                }
            }
        }
    }
}

/// A request whose body is a stream was to be sent a second time (it is opened with no retry,
/// so this does not happen).
#[derive(Debug)]
struct NotResendable;

impl fmt::Display for NotResendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request whose body is a stream cannot be sent twice")
    }
}

impl StdError for NotResendable {}

/// The rest of the stack's error, classified as the attribute classifies a reqwest error.
struct Transport(reqwest_middleware::Error);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Classify for Transport {
    fn classify(&self) -> Verdict {
        match &self.0 {
            reqwest_middleware::Error::Reqwest(error) => error.classify(),
            reqwest_middleware::Error::Middleware(error) => {
                let error: &(dyn StdError + Send + Sync + 'static) = error.as_ref();
                classify_transport(error)
            }
        }
    }
}
