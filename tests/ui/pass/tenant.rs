//! `tenant = ..` with a string argument, an integer field and a `Tenant`; the functions stay
//! `Send`.
#![deny(warnings)]

mod support;

use ratelimited::{rate_limited, Tenant};
use support::ApiError;

struct Customer {
    id: u64,
}

#[rate_limited(model = "gpt-4o-mini", tenant = user)]
async fn by_user(user: &str, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{user} {prompt}"))
}

#[rate_limited(model = "gpt-4o-mini", tenant = customer.id)]
async fn by_customer(customer: &Customer, prompt: &str) -> Result<String, ApiError> {
    Ok(format!("{} {prompt}", customer.id))
}

#[rate_limited(model = "gpt-4o-mini", tenant = workspace)]
async fn by_workspace(workspace: Tenant, prompt: String) -> Result<String, ApiError> {
    Ok(format!("{workspace} {prompt}"))
}

fn is_send<T: Send>(_: &T) {}

fn main() {
    support::run(async {
        let customer = Customer { id: 7 };
        let call = by_user("alice", "hi");
        is_send(&call);
        assert_eq!(call.await.unwrap(), "alice hi");
        assert_eq!(by_customer(&customer, "hi").await.unwrap(), "7 hi");
        let call = by_workspace(Tenant::from("acme"), "hi".to_owned());
        is_send(&call);
        assert_eq!(call.await.unwrap(), "acme hi");
    });
}
