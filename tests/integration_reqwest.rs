//! The `reqwest` integration: `Classify` for `reqwest::Error`, `http_error`,
//! `error_for_status`, `rate_limit_headers` and `CallError`, against real sockets on loopback
//! only (a closed port, a listener that never answers, and a tiny canned HTTP server on a
//! std thread). Every request has a short client timeout and is sent once.
#![cfg(feature = "reqwest")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ratelimited::http::HttpError;
use ratelimited::integrations::reqwest::{error_for_status, http_error, rate_limit_headers};
use ratelimited::testing::fresh_registry_with_env;
use ratelimited::{rate_limited, CallError, Classify, Verdict};
use serde_json::{json, Value};

fn client(timeout: Duration) -> reqwest::Client {
    // The dev-dependency build of reqwest has `rustls-no-provider` (for the quickstart); plain
    // HTTP on loopback needs no TLS, but building a client still wants a provider installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A raw HTTP/1.1 response with `Connection: close`, so every request opens a new connection.
fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    out
}

/// Serves `responses` in order, one per connection, on a std thread; counts the requests.
fn serve(responses: Vec<String>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for answer in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; content_length];
            let _ = reader.read_exact(&mut body);
            count.fetch_add(1, Ordering::SeqCst);
            let mut stream = reader.into_inner();
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.flush();
        }
    });
    (addr, served)
}

const RATE_LIMITED_BODY: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 199000, Requested 1400. Please try again in 420ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

#[tokio::test]
async fn connect_error_is_transient() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let error = client(Duration::from_secs(2))
        .get("http://127.0.0.1:9/")
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(error.classify(), Verdict::Transient { retry_after: None });
    assert!(CallError::from(error).classify().is_retryable());
}

#[tokio::test]
async fn timeout_is_transient() {
    // Bound but never accepted: the kernel completes the handshake, no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let error = client(Duration::from_millis(150))
        .get(url)
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.classify(), Verdict::Transient { retry_after: None });
    drop(silent);
}

#[tokio::test]
async fn builder_and_decode_errors_are_fatal() {
    let http = client(Duration::from_secs(5));
    let error = http.get("not a url").send().await.unwrap_err();
    assert!(error.is_builder(), "{error:?}");
    assert_eq!(error.classify(), Verdict::Fatal);

    let (addr, _) = serve(vec![response("200 OK", &[], "not json")]);
    let ok = http.get(format!("http://{addr}/")).send().await.unwrap();
    let error = ok.json::<Value>().await.unwrap_err();
    assert!(error.is_decode(), "{error:?}");
    assert_eq!(error.classify(), Verdict::Fatal);
    assert_eq!(CallError::from(error).classify(), Verdict::Fatal);
}

#[tokio::test]
async fn status_errors_classify_from_their_status() {
    let (addr, _) = serve(vec![
        response("429 Too Many Requests", &[], ""),
        response("503 Service Unavailable", &[], ""),
        response("413 Payload Too Large", &[], ""),
        response("400 Bad Request", &[], ""),
    ]);
    let http = client(Duration::from_secs(5));
    let mut verdicts = Vec::new();
    for _ in 0..4 {
        let error = http
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        assert!(error.is_status());
        verdicts.push(error.classify());
    }
    assert_eq!(verdicts[0], Verdict::RateLimited { retry_after: None });
    assert_eq!(verdicts[1], Verdict::Transient { retry_after: None });
    assert!(matches!(verdicts[2], Verdict::RequestTooLarge { .. }));
    assert_eq!(verdicts[3], Verdict::Fatal);
}

#[tokio::test]
async fn http_error_keeps_status_headers_and_body() {
    let (addr, _) = serve(vec![
        response(
            "429 Too Many Requests",
            &[
                ("retry-after-ms", "840"),
                ("x-ratelimit-limit-tokens", "200000"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "420ms"),
            ],
            RATE_LIMITED_BODY,
        ),
        response("429 Too Many Requests", &[("retry-after", "1")], QUOTA_BODY),
        response("200 OK", &[("x-ratelimit-remaining-requests", "499")], "{}"),
    ]);
    let http = client(Duration::from_secs(5));
    let url = format!("http://{addr}/v1/chat/completions");

    let limited = http.post(&url).send().await.unwrap();
    let headers = rate_limit_headers(&limited);
    assert_eq!(headers.limit_tokens, Some(200_000));
    assert_eq!(headers.remaining_tokens, Some(0));
    assert_eq!(headers.reset_tokens, Some(Duration::from_millis(420)));
    let error = http_error(limited).await;
    assert_eq!(error.status, 429);
    assert_eq!(error.header("Retry-After-Ms"), Some("840"));
    assert_eq!(error.body, RATE_LIMITED_BODY);
    // The header wins over the message's "420ms".
    assert_eq!(
        error.classify(),
        Verdict::RateLimited {
            retry_after: Some(Duration::from_millis(840))
        }
    );

    let quota = error_for_status(http.post(&url).send().await.unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(quota.classify(), Verdict::QuotaExhausted { ref message } if message.starts_with("You exceeded")),
        "insufficient_quota is never retried, retry-after or not"
    );
    assert!(matches!(
        CallError::from(quota).classify(),
        Verdict::QuotaExhausted { .. }
    ));

    let ok = error_for_status(http.post(&url).send().await.unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(rate_limit_headers(&ok).remaining_requests, Some(499));
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 50)]
async fn chat(http: &reqwest::Client, url: &String, body: &Value) -> Result<Value, CallError> {
    let response = http.post(url.as_str()).json(body).send().await?;
    let response = error_for_status(response).await?;
    Ok(response.json().await?)
}

#[tokio::test]
async fn rate_limited_function_retries_a_429_as_the_server_asks() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let usage = json!({
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}
    });
    let (addr, served) = serve(vec![
        response(
            "429 Too Many Requests",
            &[("retry-after-ms", "30")],
            RATE_LIMITED_BODY,
        ),
        response("200 OK", &[], &usage.to_string()),
    ]);
    let http = client(Duration::from_secs(5));
    let url = format!("http://{addr}/v1/chat/completions");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]});
    let answer = chat(&http, &url, &body).await.unwrap();
    assert_eq!(answer["usage"]["completion_tokens"], 3);
    assert_eq!(served.load(Ordering::SeqCst), 2, "one 429, then success");

    // Never retried: quota exhausted comes back at once, as the function's own error.
    let (addr, served) = serve(vec![response("429 Too Many Requests", &[], QUOTA_BODY)]);
    let url = format!("http://{addr}/v1/chat/completions");
    let error = chat(&http, &url, &body).await.unwrap_err();
    assert!(
        matches!(error.downcast_ref::<HttpError>(), Some(e) if e.status == 429),
        "{error:?}"
    );
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // A refused connection is transient: retried until the budget is spent, then the
    // limiter's `RetriesExhausted` comes back through `CallError::Limiter`.
    let refused = String::from("http://127.0.0.1:9/v1/chat/completions");
    let error = chat_once(&http, &refused, &body).await.unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Limiter(ratelimited::Error::RetriesExhausted { attempts: 2, .. })
        ),
        "{error:?}"
    );
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 50, retries = 1)]
async fn chat_once(http: &reqwest::Client, url: &String, body: &Value) -> Result<Value, CallError> {
    let response = http.post(url.as_str()).json(body).send().await?;
    Ok(error_for_status(response).await?.json().await?)
}
