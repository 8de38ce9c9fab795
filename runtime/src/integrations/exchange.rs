//! One limited exchange on an HTTP stack, whatever the client: what the attribute's expansion
//! does around a function body, done around a request. Open a [`Call`] for the recognised
//! request (estimate, output budget), then per attempt acquire, send, and hand the answer to
//! [`Exchange::answer`], which settles it (from the JSON body's usage, or for a stream when
//! the stream ends) or decides to retry, through the same [`Call::finish`] as the attribute.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::answers::classify::{Classify, Verdict};
use crate::answers::http::HttpError;
use crate::answers::usage::WithHeaders;
use crate::call::{Attempt, Call, Next};
use crate::integrations::body::{BoxError, LimitedBody, SseFrames};
use crate::integrations::headers::{header_pairs, rate_limit_headers};
use crate::integrations::llm::{LlmRequest, Routes, Unrecognised};
use crate::model::tokens::estimate::EstimateTokens;
use crate::units::error::Error;

/// What a request's method, host, path and body make of it under some [`Routes`].
pub(crate) enum Plan {
    /// Send it untouched.
    Pass,
    /// Send it through the limiter.
    Limit(Box<Exchange>),
}

impl Plan {
    /// Recognises the request and opens its call; `resendable` is false when the request
    /// cannot be sent twice (its body is a stream), and then it is never retried.
    ///
    /// # Errors
    /// The limiter's configuration errors and unknown models, as `Call::new` gives them.
    pub(crate) fn of(
        routes: &Routes,
        method: &str,
        host: &str,
        path: &str,
        body: Option<&[u8]>,
        resendable: bool,
    ) -> Result<Plan, Error> {
        let recognised = body.and_then(|body| routes.recognise(method, host, path, body));
        let retries = if resendable { routes.retries } else { Some(0) };
        match (recognised, &routes.unrecognised) {
            (Some(request), _) => {
                Exchange::for_request(routes, &request, retries).map(|e| Plan::Limit(Box::new(e)))
            }
            (None, Unrecognised::Pass) => Ok(Plan::Pass),
            (None, Unrecognised::LimitAs { model }) => {
                let mut call = open(routes, model, None, retries)?;
                call.set_input_tokens(0);
                call.set_max_tokens(0);
                Ok(Plan::Limit(Box::new(Exchange {
                    call,
                    read_usage: false,
                })))
            }
        }
    }
}

fn open(
    routes: &Routes,
    model: &str,
    provider: Option<&str>,
    retries: Option<u32>,
) -> Result<Call, Error> {
    let tier = routes.tier.as_deref();
    match &routes.registry {
        Some(registry) => Call::in_registry(registry, model, provider, tier, retries),
        None => Call::new(model, provider, tier, retries),
    }
}

/// One limited request: its call, and whether its answer's usage is read.
pub(crate) struct Exchange {
    call: Call,
    read_usage: bool,
}

/// What to do after one attempt's answer.
// `Done` is the common case, not worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<B, E> {
    /// Give this response to the caller.
    Done(Response<LimitedBody<B>>),
    /// Give this transport error to the caller.
    Failed(E),
    /// Send the request again (the wait is already over).
    Retry,
}

impl Exchange {
    fn for_request(
        routes: &Routes,
        request: &LlmRequest,
        retries: Option<u32>,
    ) -> Result<Exchange, Error> {
        let mut call = open(routes, &request.model, request.provider, retries)?;
        call.estimate(request.text_len(), |encoding| {
            request.body.estimate_tokens(encoding)
        });
        call.estimate_images(request.body.image_tokens());
        call.observe_budget(Some(request.output_budget()));
        Ok(Exchange {
            call,
            read_usage: true,
        })
    }

    /// Waits for the limiter and reserves the request's cost.
    ///
    /// # Errors
    /// As [`Call::acquire`].
    pub(crate) async fn acquire(&mut self) -> Result<Attempt, Error> {
        self.call.acquire().await
    }

    /// Settles `attempt` with what sending it gave, and says what comes next.
    ///
    /// # Errors
    /// The limiter's verdict when it gives up: retries spent, a retry-after too long.
    pub(crate) async fn answer<B, E>(
        &mut self,
        attempt: Attempt,
        sent: Result<Response<B>, E>,
    ) -> Result<Step<B, E>, Error>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        E: Classify + fmt::Debug,
    {
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let failed: Result<(), &E> = Err(&error);
                return Ok(match self.call.finish(attempt, &failed).await? {
                    Next::Retry => Step::Retry,
                    Next::Return => Step::Failed(error),
                });
            }
        };
        let (parts, body) = response.into_parts();
        let headers = rate_limit_headers(&parts.headers);
        if parts.status.is_success() {
            if !self.read_usage {
                let answered: Result<WithHeaders<()>, HttpError> =
                    Ok(WithHeaders { body: (), headers });
                self.call.finish(attempt, &answered).await?;
                return Ok(Step::Done(Response::from_parts(
                    parts,
                    LimitedBody::passthrough(body),
                )));
            }
            if is_event_stream(&parts.headers) {
                let stream = self
                    .call
                    .start_stream(attempt, SseFrames::new(body), Some(headers));
                return Ok(Step::Done(Response::from_parts(
                    parts,
                    LimitedBody::streaming(stream),
                )));
            }
            let collected: Result<_, BoxError> = body.collect().await.map_err(Into::into);
            let bytes = match collected {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let lost = BodyLost(error);
                    let failed: Result<(), &BodyLost> = Err(&lost);
                    return Ok(match self.call.finish(attempt, &failed).await? {
                        Next::Retry => Step::Retry,
                        Next::Return => {
                            Step::Done(Response::from_parts(parts, LimitedBody::failed(lost.0)))
                        }
                    });
                }
            };
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let answered: Result<WithHeaders<Value>, HttpError> = Ok(WithHeaders {
                body: value,
                headers,
            });
            self.call.finish(attempt, &answered).await?;
            return Ok(Step::Done(Response::from_parts(
                parts,
                LimitedBody::whole(bytes),
            )));
        }
        // An error answer is small: read it whole, so its body's hints and codes classify it
        // (a body that cannot be read leaves the status and headers to decide).
        let bytes = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let error = HttpError {
            status: parts.status.as_u16(),
            headers: header_pairs(&parts.headers),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        let failed: Result<(), HttpError> = Err(error);
        Ok(match self.call.finish(attempt, &failed).await? {
            Next::Retry => Step::Retry,
            Next::Return => Step::Done(Response::from_parts(parts, LimitedBody::whole(bytes))),
        })
    }
}

/// Whether a response is Server-Sent Events.
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// A whole answer's body that failed while it was read (the connection dropped): transient.
struct BodyLost(BoxError);

impl fmt::Debug for BodyLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the response body failed while it was read: {}", self.0)
    }
}

impl Classify for BodyLost {
    fn classify(&self) -> Verdict {
        Verdict::Transient { retry_after: None }
    }
}

/// Classifies a client's transport error by the I/O error in its chain: a connection refused
/// or reset, a timeout, is transient (retried); anything else is fatal (returned as it is).
pub(crate) fn classify_transport(error: &(dyn StdError + 'static)) -> Verdict {
    let mut next = Some(error);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.classify();
        }
        next = err.source();
    }
    Verdict::Fatal
}
