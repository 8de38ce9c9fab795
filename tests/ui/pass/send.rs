//! The annotated function's future is `Send` whenever the original's would be, so it can be
//! spawned on a multi-thread runtime.
#![deny(warnings)]

mod support;

use std::future::Future;

use ratelimited::rate_limited;
use support::ApiError;

#[derive(Clone)]
struct Request {
    prompt: String,
}

struct Client;

impl Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn chat(&mut self, request: Request, history: &[String]) -> Result<String, ApiError> {
        tokio::task::yield_now().await;
        Ok(format!("{} {}", request.prompt, history.len()))
    }
}

fn assert_send<F: Future + Send>(future: F) -> F {
    future
}

fn main() {
    support::run(async {
        let mut client = Client;
        let request = Request {
            prompt: "p".to_owned(),
        };
        let history = vec!["h".to_owned()];
        let reply = assert_send(client.chat(request, &history)).await.unwrap();
        assert_eq!(reply, "p 1");
    });
}
