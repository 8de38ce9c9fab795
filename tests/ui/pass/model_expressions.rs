//! `model`, `tier` and `provider` from expressions of the arguments: `&str`, `String`,
//! `&String` and `Cow<str>` all work.
#![deny(warnings)]

mod support;

use std::borrow::Cow;

use ratelimited::rate_limited;
use support::ApiError;

#[derive(Clone)]
struct Request {
    model: String,
    tier: Option<String>,
}

const MODEL: &str = "gpt-4o-mini";

#[rate_limited(model = request.model.as_str())]
async fn method_call(request: &Request) -> Result<String, ApiError> {
    Ok(request.model.clone())
}

#[rate_limited(model = request.model, tier = request.tier.as_deref().unwrap_or("tier-1"))]
async fn owned_field(request: Request) -> Result<String, ApiError> {
    Ok(request.model)
}

#[rate_limited(model = model, provider = provider)]
async fn plain_arguments(model: &str, provider: String) -> Result<String, ApiError> {
    Ok(format!("{model} {provider}"))
}

#[rate_limited(model = MODEL, tier = Cow::Borrowed("tier-2"))]
async fn constant() -> Result<(), ApiError> {
    Ok(())
}

#[rate_limited(model = format!("gpt-4o-{}", size))]
async fn computed(size: &str) -> Result<(), ApiError> {
    Ok(())
}

struct Deployment {
    model: String,
}

impl Deployment {
    #[rate_limited(model = &self.model)]
    async fn call(&self) -> Result<String, ApiError> {
        Ok(self.model.to_uppercase())
    }
}

fn main() {
    support::run(async {
        let request = || Request {
            model: "gpt-4o-mini".to_owned(),
            tier: None,
        };
        assert_eq!(method_call(&request()).await.unwrap(), "gpt-4o-mini");
        assert_eq!(owned_field(request()).await.unwrap(), "gpt-4o-mini");
        assert_eq!(
            plain_arguments("gpt-4o-mini", "openai".to_owned())
                .await
                .unwrap(),
            "gpt-4o-mini openai"
        );
        constant().await.unwrap();
        computed("mini").await.unwrap();
        let deployment = Deployment {
            model: MODEL.to_owned(),
        };
        assert_eq!(deployment.call().await.unwrap(), "GPT-4O-MINI");
    });
}
