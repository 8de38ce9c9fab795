//! `tenant = ..` beside `pool = ..`: a string argument and an integer field; the functions stay
//! `Send`, and each attempt still binds its deployment.
#![deny(warnings)]

mod support;

use std::future::Future;

use ratelimited::{rate_limited, Registry};
use support::ApiError;

struct Customer {
    id: u64,
}

#[rate_limited(pool = "gpt-4o", deployment = deployment, tenant = user)]
async fn by_user(user: &str, prompt: &str) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("{} {user} {prompt}", deployment.name()))
}

#[rate_limited(pool = pool, deployment = d, tenant = customer.id, max_tokens = 16)]
async fn by_customer(pool: &str, customer: &Customer, prompt: String) -> Result<String, ApiError> {
    Ok(format!("{}:{} {prompt}", d.name(), customer.id))
}

fn assert_send<F: Future + Send>(future: F) -> F {
    future
}

fn main() {
    let _registry = Registry::with_env([
        ("RATE_LIMITED_POOL_GPT_4O", "east,west"),
        ("RATE_LIMITED_EAST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_EAST_TPM", "100000"),
        ("RATE_LIMITED_WEST_MODEL", "azure/gpt-4o"),
        ("RATE_LIMITED_WEST_TPM", "50000"),
    ])
    .scope();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
        .block_on(async {
            let reply = assert_send(by_user("alice", "hi")).await.unwrap();
            assert_eq!(reply, "east alice hi");
            let customer = Customer { id: 7 };
            let reply = assert_send(by_customer("gpt-4o", &customer, "x".to_owned()))
                .await
                .unwrap();
            assert_eq!(reply, "east:7 x");
        });
}
