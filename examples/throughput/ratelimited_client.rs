//! Strategies (a) and (f): `#[rate_limited]` at headroom 1.0, told the server's RPM and TPM;
//! (f) reads the answers without `openai-processing-ms`, as from a server that does not send
//! it (Anthropic's): each count may then be as old as the whole round trip.

use ratelimited::http::WithHeaders;
use ratelimited::rate_limited;
use ratelimited::testing::{MockProvider, MockRequest, MockResponse};
use serde_json::Value;

use crate::common::{ApiError, ChatClient};
use crate::transport::Target;
use crate::workload::{Job, MODEL};

/// The request's estimate and output budget come from `MockRequest` (prompt tokens,
/// `max_tokens`, `n`); the response's usage settles the reservation.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_mock(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<MockResponse, ApiError> {
    provider.chat(request).await.map_err(ApiError::Http)
}

/// The prompt is estimated from the JSON body (messages plus chat framing), `max_tokens` read
/// from it, and the `usage` in the response settles it.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_http(http: &ChatClient, body: &Value) -> Result<WithHeaders<Value>, ApiError> {
    http.chat(body).await
}

/// (f) in paused time: the mock's answer without its processing time.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_mock_unprocessed(
    provider: &MockProvider,
    request: &MockRequest,
) -> Result<MockResponse, ApiError> {
    let mut response = provider.chat(request).await.map_err(ApiError::Http)?;
    response
        .headers
        .retain(|(name, _)| name != "openai-processing-ms");
    Ok(response)
}

/// (f) in real time: the server's answer without its processing time.
#[rate_limited(model = MODEL, provider = "openai")]
async fn ask_http_unprocessed(
    http: &ChatClient,
    body: &Value,
) -> Result<WithHeaders<Value>, ApiError> {
    let mut response = http.chat(body).await?;
    response.headers.processing = None;
    Ok(response)
}

/// One job through `#[rate_limited]`, reading the processing time or not.
pub(crate) async fn via_ratelimited(
    target: &Target,
    job: &Job,
    processing: bool,
) -> Result<(), String> {
    let result = match (target, processing) {
        (Target::Mock(provider), true) => ask_mock(provider, &job.mock_request()).await.map(drop),
        (Target::Mock(provider), false) => ask_mock_unprocessed(provider, &job.mock_request())
            .await
            .map(drop),
        (Target::Http(http), true) => ask_http(http, &job.body()).await.map(drop),
        (Target::Http(http), false) => ask_http_unprocessed(http, &job.body()).await.map(drop),
    };
    result.map_err(|e| e.to_string())
}

/// The family's charge correction now (1.0 while the server has counted no more than
/// estimated).
pub(crate) fn correction() -> f64 {
    ratelimited::Registry::current()
        .limiter_with(MODEL, Some("openai"), None)
        .map_or(f64::NAN, |family| family.charge_correction())
}

/// How the family counts now: continuous unless set or learned otherwise.
pub(crate) fn family_window() -> Option<ratelimited::limiter::Window> {
    ratelimited::Registry::current()
        .limiter_with(MODEL, Some("openai"), None)
        .ok()
        .map(|family| family.limiter.quota().window)
}
