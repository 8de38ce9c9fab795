//! Strategy (a): `#[rate_limited]` at headroom 1.0, told the server's RPM and TPM.

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

pub(crate) async fn via_ratelimited(target: &Target, job: &Job) -> Result<(), String> {
    let result = match target {
        Target::Mock(provider) => ask_mock(provider, &job.mock_request()).await.map(drop),
        Target::Http(http) => ask_http(http, &job.body()).await.map(drop),
    };
    result.map_err(|e| e.to_string())
}
