//! Methods with `&self`, `&mut self`, `self` and `mut self`, inherent and in a trait impl.
//! With retries, `self` by value is cloned per attempt (so `Self: Clone`), and `&mut self` is
//! reborrowed per attempt.
#![deny(warnings)]

mod support;

use ratelimited::rate_limited;
use support::ApiError;

#[derive(Clone)]
struct Client {
    name: String,
    calls: u32,
}

impl Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn shared(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(format!("{}: {prompt}", self.name))
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn unique(&mut self, prompt: &str) -> Result<String, ApiError> {
        self.calls += 1;
        let calls = |this: &mut Self| this.calls;
        Ok(format!("{} {prompt}", calls(self)))
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn owned(self, suffix: &str) -> Result<String, ApiError> {
        // `self` in a nested item is that item's own.
        struct Wrapper(String);
        impl Wrapper {
            fn get(self) -> String {
                self.0
            }
        }
        Ok(Wrapper(self.name + suffix).get())
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn owned_mut(mut self, suffix: &str) -> Result<String, ApiError> {
        self.name.push_str(suffix);
        assert_eq!(format!("{}", self.name), self.name);
        Ok(self.name)
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn boxed(self: Box<Self>) -> Result<String, ApiError> {
        Ok(self.name)
    }

    #[rate_limited(model = "gpt-4o-mini")]
    async fn typed_ref(self: &Self) -> Result<String, ApiError> {
        Ok(self.calls.to_string())
    }

    /// A borrow of `self` can be returned.
    #[rate_limited(model = "gpt-4o-mini")]
    async fn borrowed(&self) -> Result<&str, ApiError> {
        Ok(&self.name)
    }
}

trait Chat {
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
}

impl Chat for Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        self.shared(prompt).await
    }
}

fn main() {
    support::run(async {
        let mut client = Client {
            name: "c".to_owned(),
            calls: 0,
        };
        assert_eq!(client.shared("hi").await.unwrap(), "c: hi");
        assert_eq!(client.unique("abc").await.unwrap(), "1 abc");
        assert_eq!(client.typed_ref().await.unwrap(), "1");
        assert_eq!(client.borrowed().await.unwrap(), "c");
        assert_eq!(client.chat("x").await.unwrap(), "c: x");
        assert_eq!(client.clone().owned("!").await.unwrap(), "c!");
        assert_eq!(client.clone().owned_mut("?").await.unwrap(), "c?");
        assert_eq!(Box::new(client).boxed().await.unwrap(), "c");
    });
}
