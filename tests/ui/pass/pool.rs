//! The pool form: `pool = ..` names a deployment pool (here from the environment) and
//! `deployment = name` binds, per attempt, the deployment that attempt was admitted on; with a
//! literal or an expression, with and without retries, on a method, streamed, and `Send`.
#![deny(warnings)]

mod support;

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use ratelimited::pool::Deployment;
use ratelimited::testing::MockStream;
use ratelimited::{rate_limited, stream::RateLimitedStream, Priority, Registry};
use serde_json::json;
use support::ApiError;

/// Where a request for `deployment` goes.
fn url(deployment: &Deployment, path: &str) -> String {
    format!(
        "{}{path}",
        deployment.endpoint().unwrap_or("http://localhost")
    )
}

#[rate_limited(pool = "gpt-4o", deployment = deployment)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("{} {prompt}", url(deployment, "/chat")))
}

#[rate_limited(pool = pool, deployment = target, retries = 0, max_tokens = 16, priority = Priority::Batch)]
async fn once(pool: &str, prompt: String) -> Result<String, ApiError> {
    Ok(format!("{}:{} {prompt}", target.name(), target.model()))
}

struct Client {
    key: String,
}

impl Client {
    #[rate_limited(pool = "gpt-4o", deployment = d, tokens = 10)]
    async fn call(&self, mut tries: u32) -> Result<String, ApiError> {
        tries += 1;
        Ok(format!(
            "{} {} {tries}",
            self.key,
            d.key_var().unwrap_or("-")
        ))
    }
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, stream)]
async fn stream(prompt: &str) -> Result<RateLimitedStream<MockStream>, ApiError> {
    let name = deployment.name().to_owned();
    let _ = prompt;
    Ok(MockStream::scripted([
        (
            Duration::ZERO,
            Ok(json!({"choices": [{"delta": {"content": name}}]})),
        ),
        (
            Duration::ZERO,
            Ok(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})),
        ),
    ]))
}

fn assert_send<F: Future + Send>(future: F) -> F {
    future
}

fn main() {
    let _registry = Registry::with_env([
        ("RATE_LIMITED_POOL_GPT_4O", "east,west"),
        ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_EAST_TPM", "100000"),
        ("RATE_LIMITED_EAST_ENDPOINT", "https://east.example"),
        ("RATE_LIMITED_EAST_KEY_VAR", "EAST_KEY"),
        ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_WEST_TPM", "50000"),
    ])
    .scope();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
        .block_on(async {
            let reply = assert_send(chat("hi")).await.unwrap();
            assert_eq!(reply, "https://east.example/chat hi");
            let pool = String::from("gpt-4o");
            assert_eq!(
                once(&pool, "x".to_owned()).await.unwrap(),
                "east:azure/gpt-4o x"
            );
            let client = Client {
                key: "k".to_owned(),
            };
            assert_eq!(client.call(1).await.unwrap(), "k EAST_KEY 2");
            let mut chunks = assert_send(stream("hi")).await.unwrap();
            let first = chunks.next().await.unwrap().unwrap();
            assert_eq!(first["choices"][0]["delta"]["content"], "east");
            while chunks.next().await.is_some() {}
            assert!(!chunks.is_holding());
        });
}
