//! Reading an OpenAI-compatible `text/event-stream` body as JSON events, as an application
//! would for `#[rate_limited(.., stream)]`: each `data:` event parsed as JSON, the stream ending
//! at `data: [DONE]`. examples/stream.rs and tests/streaming_http.rs both include this file.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde_json::Value;

use ratelimited::integrations::reqwest::error_for_status;
use ratelimited::stream::IncludeStreamUsage;

use super::ApiError;

/// The JSON events of a streamed response; an `{"error": ..}` event or a broken connection is
/// an `Err` item (mid-stream: the caller's to handle, never retried).
pub type JsonEvents = Pin<Box<dyn Stream<Item = Result<Value, ApiError>> + Send>>;

/// The `data:` events of `response`'s body, as JSON.
pub fn json_events(response: reqwest::Response) -> JsonEvents {
    let bytes = response.bytes_stream();
    Box::pin(futures_util::stream::unfold(
        (bytes, Vec::new(), false),
        |(mut bytes, mut buffer, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    let text = String::from_utf8_lossy(&event);
                    let data: Vec<&str> = text
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(str::trim)
                        .collect();
                    let data = data.join("\n");
                    if data.is_empty() {
                        continue; // a comment or keep-alive
                    }
                    if data == "[DONE]" {
                        return None;
                    }
                    let item = match serde_json::from_str::<Value>(&data) {
                        Ok(event) if event.get("error").is_some() => {
                            Err(ApiError::Transport(format!("error event: {data}")))
                        }
                        Ok(event) => Ok(event),
                        Err(error) => {
                            Err(ApiError::Transport(format!("bad event {data}: {error}")))
                        }
                    };
                    let done = item.is_err();
                    return Some((item, (bytes, buffer, done)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(error)) => {
                        let item = Err(ApiError::Transport(error.to_string()));
                        return Some((item, (bytes, buffer, true)));
                    }
                    None => return None,
                }
            }
        },
    ))
}

/// Sends a chat request with `stream: true` and `include_usage`: the SSE events of a success,
/// or the server's error answer (a 429 or 5xx before the first byte, which `#[rate_limited]`
/// retries like any other call).
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    request: &Value,
) -> Result<JsonEvents, ApiError> {
    let mut request = request.clone();
    request.include_stream_usage();
    let response = client
        .post(url)
        .json(&request)
        .send()
        .await
        .map_err(|e| ApiError::Transport(e.to_string()))?;
    let response = error_for_status(response).await.map_err(ApiError::Http)?;
    Ok(json_events(response))
}
