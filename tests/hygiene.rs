//! The expansion names nothing through the caller's scope: every path is absolute
//! (`::core::..`, `::ratelimited::__private::..`) and every generated local is hygienic. This
//! file shadows the prelude and `core`, and uses the expansion's own names for its parameters;
//! the annotated functions still compile and run.

#![allow(dead_code, non_camel_case_types, clippy::all)]

struct Result;
struct Ok;
struct Err;
struct Some;
struct None;
struct Option;
struct Clone;
struct Box;
struct String;
struct Vec;
struct AsRef;
struct str;
struct usize;
struct u32;
struct u64;
mod core {}

use ratelimited::rate_limited;

#[derive(Debug)]
struct ApiError;

impl ::core::convert::From<ratelimited::Error> for ApiError {
    fn from(_: ratelimited::Error) -> Self {
        ApiError
    }
}

impl ratelimited::Classify for ApiError {
    fn classify(&self) -> ratelimited::Verdict {
        ratelimited::Verdict::Fatal
    }
}

type Reply = ::std::result::Result<::std::string::String, ApiError>;

#[derive(::core::clone::Clone)]
struct Request {
    prompt: ::std::string::String,
    max_tokens: ::core::primitive::u32,
}

#[rate_limited(
    model = model,
    tier = "tier-1",
    provider = "openai",
    max_tokens = request.max_tokens,
    n = 1,
    retries = 2
)]
async fn shadowed(model: &::core::primitive::str, request: Request) -> Reply {
    ::std::result::Result::Ok(request.prompt)
}

/// Parameters named like the expansion's locals do not collide with them.
#[rate_limited(model = "gpt-4o-mini")]
async fn same_names(
    __rl_call: &::core::primitive::str,
    __rl_result: ::std::string::String,
    __rl_error: &mut ::core::primitive::u32,
    __rl_in0: (::core::primitive::u8, ::core::primitive::u8),
    __rl_arg0: ::core::primitive::bool,
) -> Reply {
    *__rl_error += 1;
    ::std::result::Result::Ok(::std::format!(
        "{__rl_call} {__rl_result} {} {__rl_arg0}",
        __rl_in0.0
    ))
}

struct Client {
    name: ::std::string::String,
}

impl Client {
    #[rate_limited(model = "gpt-4o-mini")]
    async fn method(&mut self, __rl_self: &::core::primitive::str) -> Reply {
        self.name.push_str(__rl_self);
        ::std::result::Result::Ok(self.name.clone())
    }
}

#[tokio::test]
async fn compiles_and_runs_with_the_prelude_shadowed() {
    let _registry = ratelimited::testing::fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "600"),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "1000000"),
    ]);
    let request = Request {
        prompt: "p".to_owned(),
        max_tokens: 5,
    };
    ::core::assert_eq!(shadowed("gpt-4o-mini", request).await.unwrap(), "p");

    let mut count = 0;
    let reply = same_names("a", "b".to_owned(), &mut count, (1, 2), true).await;
    ::core::assert_eq!(reply.unwrap(), "a b 1 true");
    ::core::assert_eq!(count, 1);

    let mut client = Client {
        name: "c".to_owned(),
    };
    ::core::assert_eq!(client.method("!").await.unwrap(), "c!");
}
