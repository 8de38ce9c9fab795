//! [`tower`](https://docs.rs/tower) (feature `tower`): [`RateLimitLayer`], the
//! [`reqwest_middleware`](super::reqwest_middleware) integration's limiter as a
//! `tower::Layer` over `http::Request<B>` services: a hyper client, or a gateway built on
//! axum or hyper that forwards LLM requests upstream.
//!
//! ```no_run
//! # use ratelimited_runtime::facade as ratelimited;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use ratelimited::integrations::tower::RateLimitLayer;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
//! let mut client = RateLimitLayer::from_env().layer(client);
//! let request = http::Request::post("http://127.0.0.1:8080/v1/chat/completions")
//!     .header("content-type", "application/json")
//!     .body(Full::from(
//!         r#"{"model": "gpt-4o-mini", "max_tokens": 200,
//!             "messages": [{"role": "user", "content": "Name three primes."}]}"#,
//!     ))?;
//! // Reserved on gpt-4o-mini's family, 429s retried, settled from the answer's usage.
//! let response = client.call(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! # let _ = body; Ok(()) }
//! ```
//!
//! The service does what [`RateLimit`](super::reqwest_middleware::RateLimit) does (see that
//! module): recognise, reserve, send, retry, settle, hold a streamed answer's reservation until
//! its body ends. The cost is known only from the request, so the reservation is made in the
//! future [`Service::call`] returns; [`Service::poll_ready`] is the inner service's. To read
//! the request's body the service collects it (a recognised request's is JSON, and small), and
//! builds each attempt's request again from those bytes, so the request body type must be
//! `From<Bytes>` (`http_body_util::Full<Bytes>`, axum's and reqwest's `Body`, ...); the inner
//! service must be `Clone`, as tower's retry requires. A request whose path is not an LLM
//! endpoint is not collected: it passes through (or, with
//! [`Unrecognised::LimitAs`](super::llm::Unrecognised::LimitAs), is sent once, without retry).
//!
//! Errors are boxed ([`BoxError`]): the inner service's own, or the limiter's
//! [`Error`](crate::Error) when it gives up (downcast to read it). Responses carry a
//! [`LimitedBody`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::answers::classify::{Classify, Verdict};
use crate::integrations::exchange::{classify_transport, Plan, Step};
use crate::integrations::llm::Routes;

pub use crate::integrations::body::{BoxError, LimitedBody};

/// A `tower::Layer` that rate-limits the LLM requests of the service it wraps (see the
/// [module](self)).
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    routes: Arc<Routes>,
}

impl RateLimitLayer {
    /// Every known LLM endpoint recognised, other requests passed through, the limits, tier
    /// and retries from the environment (the current registry).
    pub fn from_env() -> Self {
        RateLimitLayer::new(Routes::new())
    }

    /// With `routes`: mapped hosts and deployments, what to do with other requests, the
    /// registry, tier and retries.
    pub fn new(routes: Routes) -> Self {
        RateLimitLayer {
            routes: Arc::new(routes),
        }
    }
}

impl Default for RateLimitLayer {
    fn default() -> Self {
        RateLimitLayer::from_env()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> RateLimitService<S> {
        RateLimitService {
            inner,
            routes: Arc::clone(&self.routes),
        }
    }
}

/// The service [`RateLimitLayer`] makes.
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    routes: Arc<Routes>,
}

/// The future of [`RateLimitService::call`].
pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for RateLimitService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<LimitedBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready goes into the future; this one stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(limited(inner, Arc::clone(&self.routes), request))
    }
}

async fn limited<S, B, ResBody>(
    mut inner: S,
    routes: Arc<Routes>,
    request: Request<B>,
) -> Result<Response<LimitedBody<ResBody>>, BoxError>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Body + From<Bytes>,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if !routes.may_recognise(&method, &path) {
        // Not an LLM endpoint: its body is not read, so it cannot be sent twice.
        let plan = Plan::of(&routes, &method, &host, &path, None, false)?;
        let exchange = match plan {
            Plan::Pass => {
                let response = inner.call(request).await.map_err(Into::into)?;
                return Ok(response.map(LimitedBody::passthrough));
            }
            Plan::Limit(exchange) => exchange,
        };
        let mut once = Some(request);
        return run(exchange, &mut inner, move || once.take()).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
    let plan = Plan::of(&routes, &method, &host, &path, Some(&bytes), true)?;
    let rebuild = move || {
        let mut request = Request::new(B::from(bytes.clone()));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = parts.headers.clone();
        *request.extensions_mut() = parts.extensions.clone();
        Some(request)
    };
    match plan {
        Plan::Pass => {
            let request = rebuild().ok_or("a request that was not rebuilt")?;
            let response = inner.call(request).await.map_err(Into::into)?;
            Ok(response.map(LimitedBody::passthrough))
        }
        Plan::Limit(exchange) => run(exchange, &mut inner, rebuild).await,
    }
}

/// The attempts of one limited request: `next_request` gives each attempt's request.
async fn run<S, B, ResBody>(
    mut exchange: Box<crate::integrations::exchange::Exchange>,
    inner: &mut S,
    mut next_request: impl FnMut() -> Option<Request<B>>,
) -> Result<Response<LimitedBody<ResBody>>, BoxError>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let mut first = true;
    loop {
        let attempt = exchange.acquire().await?;
        if !first {
            // The first attempt's service was polled ready by the caller.
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
        }
        first = false;
        let request =
            next_request().ok_or("a request whose body is a stream cannot be sent twice")?;
        let sent = inner
            .call(request)
            .await
            .map_err(|error| Transport(error.into()));
        match exchange.answer(attempt, sent).await? {
            Step::Retry => {}
            Step::Failed(Transport(error)) => return Err(error),
            Step::Done(response) => return Ok(response),
        }
    }
}

/// The inner service's error, classified by the I/O error in its chain.
struct Transport(BoxError);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Classify for Transport {
    fn classify(&self) -> Verdict {
        classify_transport(&*self.0)
    }
}
