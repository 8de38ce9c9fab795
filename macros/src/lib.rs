//! The `#[rate_limited]` attribute of the [`ratelimited`](https://docs.rs/ratelimited) crate.
//!
//! Depend on `ratelimited` and write `ratelimited::rate_limited`; this crate is its
//! implementation detail. Everything works on `proc_macro2` tokens, so it is unit-tested
//! without a compiler run.
//!
//! The modules are layers, declared below from the bottom up: each one uses only modules
//! declared before it (tests included), so there are no cycles.
//!
//! - `spans.rs`: where errors point (generated calls spanned over the user's tokens);
//! - `names.rs`: the hygienic names the generated code introduces;
//! - `attr.rs`: parsing of the attribute's arguments (`model = ..`, `pool = ..`, `skip(..)`, ..);
//! - `args.rs`: what each attempt binds in place of the function's parameters;
//! - `validate.rs`: checks of the item (an `async fn` returning a `Result`, `skip` names);
//! - `estimate.rs`: the reservation, from the arguments or the attribute;
//! - `expand.rs`: the code generated for a checked item;
//! - `entry.rs`: the pipeline: parse, check, generate, or give the item back with the errors;
//! - `test_support.rs`, `tests/` (tests only): helpers, and the tests that run the pipeline.

#![doc(test(no_crate_inject, attr(deny(warnings))))]

// Bottom up, one declaration per group: rustfmt sorts consecutive `mod` lines alphabetically.
mod spans;

mod names;

mod attr;

mod args;

mod validate;

mod estimate;

mod expand;

mod entry;

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests;

/// Keeps every call of an `async fn` inside its model's rate limits.
///
/// ```
/// use ratelimited::rate_limited;
/// # use ratelimited::{Classify, Verdict};
/// # #[derive(Debug)]
/// # pub enum ApiError { Limiter(ratelimited::Error), Status(u16) }
/// # impl From<ratelimited::Error> for ApiError {
/// #     fn from(e: ratelimited::Error) -> Self { ApiError::Limiter(e) }
/// # }
/// # impl Classify for ApiError {
/// #     fn classify(&self) -> Verdict {
/// #         match self {
/// #             ApiError::Status(429) => Verdict::RateLimited { retry_after: None },
/// #             ApiError::Limiter(e) => e.classify(),
/// #             ApiError::Status(_) => Verdict::Fatal,
/// #         }
/// #     }
/// # }
/// # pub struct Client;
/// # impl Client {
/// #     pub async fn chat(&self, _model: &str, text: &str) -> Result<String, ApiError> {
/// #         Ok(text.to_owned())
/// #     }
/// # }
///
/// #[rate_limited(model = "gpt-4o-mini")]
/// async fn summarize(client: &Client, text: &str) -> Result<String, ApiError> {
///     client.chat("gpt-4o-mini", text).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ApiError> {
/// # summarize(&Client, "a long text").await?;
/// # Ok(())
/// # }
/// ```
///
/// Every call, from anywhere in the process, goes through the one limiter of the model's limit
/// family (or, with [`pool`](#pool-and-deployment), the limiter of the pool's deployment that
/// admits it soonest):
///
/// 1. the request's input tokens are estimated from the arguments (with the model's tokenizer,
///    see [below](#the-prompt-estimate)), and its output from `max_tokens × n`;
/// 2. the call waits, in arrival order, until every limit (requests, tokens, in-flight calls,
///    ..) has room, and reserves it;
/// 3. the body runs; a rate-limit or transient error is retried after the wait the server asks
///    for (or a backoff), an error that cannot succeed is returned at once;
/// 4. the reservation is settled with the usage the result reports.
///
/// # What the function must look like
///
/// - It is an `async fn`: a free function, or a method taking `&self`, `&mut self` or `self`,
///   with any generics, lifetimes, where clauses and `impl Trait` arguments.
/// - It returns `Result<T, E>` where
///   - `E: From<ratelimited::Error>`, so that the limiter's own failures (request too large,
///     retries spent, unknown model, malformed configuration) come back through it,
///   - `E: Classify + Debug`, so a failed attempt can be told apart: rate-limited, transient,
///     or final,
///   - `T: ReportUsage`, the tokens the call really used (`None` keeps the estimate).
/// - Arguments passed by value are `Clone`, unless `retries = 0` (see
///   [below](#arguments-and-retries)).
///
/// Each of these is checked at compile time, with an error at the offending tokens that says
/// what to write.
///
/// # The prompt estimate
///
/// Every argument counts as prompt text (unless it is [skipped](#skip) or is the `model`,
/// `pool`, `tier` or `provider`), by the first of these its type offers:
///
/// 1. `EstimateTokens` (`&str`, `String`, `Cow<str>`, chat messages, JSON values, and slices,
///    `Vec`s, `Option`s and tuples of them): its own estimate;
/// 2. `AsRef<str>`: that text;
/// 3. numbers, `bool`, `char`, `Duration` and `Priority` count zero: they are parameters;
/// 4. `Display` (or `ToString`): the text it shows, so a prompt type that renders itself
///    counts, and so does an id or a URL unless it is skipped;
/// 5. anything else counts zero.
///
/// Inside a generic function the type offers what the function's bounds say:
/// `prompt: impl AsRef<str>`, `P: AsRef<str>`, `impl Display` and `P: EstimateTokens` are read,
/// but `impl Into<String>` is not (reading it would consume it): bound it by `AsRef<str>`, or
/// give the estimate with [`tokens`](#tokens). An argument that counted zero under rule 5 is
/// named, with those fixes, in one `warn` (`tracing`) at the function's first call when its
/// declared type speaks of text (`impl Into<String>`, `S: Into<Cow<'a, str>>`, `Vec<T>` with
/// `T: Display`), or when no argument counted at all; a client beside a counted prompt is
/// never named.
///
/// # `model` (or `pool`)
///
/// The model id: a string literal, or any expression of the function's arguments that gives a
/// `&str`, `String`, `&String` or `Cow<str>` (an `Option` needs its fallback:
/// `model = name.unwrap_or("gpt-4o-mini")`). It is evaluated once per call, before the first
/// attempt; dated ids (`gpt-4o-2024-08-06`) share their family's limiter.
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// pub struct Request {
///     pub model: String,
///     pub prompt: String,
/// }
///
/// #[rate_limited(model = request.model.as_str())]
/// pub async fn complete(request: &Request) -> Result<String, ApiError> {
///     Ok(request.prompt.clone())
/// }
/// # fn main() {}
/// ```
///
/// # `pool` and `deployment`
///
/// Instead of `model`: `pool = ..` names a deployment pool (one logical model served by several
/// deployments: Azure regions, a provisioned deployment spilling over to pay-as-you-go, two
/// projects), and `deployment = name` the binding through which the body learns where each
/// attempt goes. The pool is defined by `RATE_LIMITED_POOL_<NAME>` and each deployment's
/// variables, or in code with `Registry::with_pool`, and resolved like a model: a string
/// literal, or any `&str`-like expression of the arguments, evaluated once per call.
///
/// Each attempt is admitted on the deployment that takes the whole reservation soonest, and
/// the body, which runs once per attempt, sees that deployment as `name`: a
/// `&ratelimited::pool::Deployment` whose `name()`, `model()`, `endpoint()` and `key_var()`
/// say where to send the request. A 429 holds only that deployment and the retry runs the body
/// again with the binding on whichever deployment admits it next; `insufficient_quota` skips
/// the deployment without spending a retry; the answer's usage settles on the deployment that
/// served it (see `ratelimited::pool::PoolCall` for what each failure does).
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// # pub struct Client;
/// # impl Client {
/// #     pub async fn chat(&self, url: &str, prompt: &str) -> Result<String, ApiError> {
/// #         Ok(format!("{url}: {prompt}"))
/// #     }
/// # }
/// // RATE_LIMITED_POOL_GPT_4O=east,west, each with RATE_LIMITED_<DEPLOYMENT>_MODEL,
/// // _TPM and _ENDPOINT
/// #[rate_limited(pool = "gpt-4o", deployment = deployment, max_tokens = 512)]
/// pub async fn chat(client: &Client, prompt: &str) -> Result<String, ApiError> {
///     let url = format!("{}/chat/completions", deployment.endpoint().unwrap_or_default());
///     client.chat(&url, prompt).await
/// }
/// # fn main() {}
/// ```
///
/// - `deployment` is required with `pool`: a body that does not know where its attempt was
///   admitted would send it elsewhere, and the limits would be kept on the wrong deployment.
///   The name is bound only in the body (the keys run once per call, before any attempt), and
///   may not be one of the function's arguments; an unused one is warned about as any unused
///   variable (`deployment = _deployment` says it is on purpose).
/// - `model` and `pool` exclude each other, and `tier` and `provider` do not go with `pool`:
///   each deployment has its own (`RATE_LIMITED_<DEPLOYMENT>_TIER`, its model's provider
///   prefix).
/// - The prompt is estimated from the arguments as for a model (or given with `tokens`), with
///   the tokenizer of the deployments' model; when the deployments' tokenizers differ it is
///   counted with each and the largest count is reserved. `max_tokens`, `n`, `skip`, `retries`,
///   `priority`, `stream` and `crate` work as for a model; a stream holds its reservation on
///   the deployment it was admitted on until it ends, and settles there.
///
/// # `tier`
///
/// The usage tier of the account, for this function only: `"free"`, `"tier-1"` .. `"tier-5"`,
/// or a provider's own names. Without it, `RATE_LIMITED_<PROVIDER>_TIER`, then
/// `RATE_LIMITED_TIER`, then `tier-1`. Any `&str`-like expression.
///
/// # `provider`
///
/// `"openai"`, `"azure"`, `"anthropic"` or `"gemini"` (any case). Without it the provider is
/// inferred from the model name (`gpt-*`, `o1`/`o3`/`o4*`, `text-embedding-*`: OpenAI;
/// `claude-*`: Anthropic; `gemini-*`: Gemini); give it for an Azure deployment name or an
/// OpenAI-compatible endpoint serving another model. A literal is checked at compile time,
/// an expression when the function is called.
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// #[rate_limited(model = "llama-3.1-70b", provider = "openai", tier = "tier-2")]
/// pub async fn local(prompt: &str) -> Result<String, ApiError> {
///     Ok(prompt.to_owned())
/// }
/// # fn main() {}
/// ```
///
/// # `tokens`
///
/// The request's input tokens, instead of the estimate from the arguments: any integer
/// expression (negative values count as zero). Use it when the prompt is built inside the
/// body, or when an argument's type offers no text (see
/// [the prompt estimate](#the-prompt-estimate): such arguments count zero otherwise).
///
/// # `max_tokens` and `n`
///
/// The output to reserve for: `n` choices of at most `max_tokens` tokens each. Without them,
/// they are taken from an argument whose type implements `OutputBudget` (a request struct, a
/// JSON request body), else the runtime's default; given here, they win over the arguments.
/// Any integer expression.
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// #[rate_limited(model = "gpt-4o-mini", tokens = 50 + document.len() / 4, max_tokens = limit, n = 1)]
/// pub async fn summarize(document: &[u8], limit: u32) -> Result<String, ApiError> {
///     Ok(format!("{} bytes, at most {limit} tokens", document.len()))
/// }
/// # fn main() {}
/// ```
///
/// # `skip`
///
/// Arguments to leave out of the prompt estimate, by name: `skip(request_id, trace)`. Every
/// argument whose type offers text (`EstimateTokens`, `AsRef<str>`, `Display`: see
/// [the prompt estimate](#the-prompt-estimate)) counts as prompt text unless it is skipped,
/// except one that *is* the `model`, `pool`, `tier` or `provider` (`model = model`,
/// `model = name.as_str()`), which is never counted. An argument those keys only read a part
/// of (`model = request.model`) still counts, since it usually carries the prompt. A name
/// that is not an argument of the function is a compile error.
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// // Only `prompt` is estimated: `model` picks the limiter, `request_id` is never sent.
/// #[rate_limited(model = model, skip(request_id))]
/// pub async fn complete(model: &str, prompt: &str, request_id: &str) -> Result<String, ApiError> {
///     Ok(format!("{request_id}: {prompt}"))
/// }
/// # fn main() {}
/// ```
///
/// # `retries`
///
/// How many times a failed attempt may be retried, for this function (an integer literal);
/// `RATE_LIMITED_MAX_RETRIES` (default 6) otherwise. With `retries = 0` the body runs exactly
/// once, arguments passed by value need not be `Clone`, and a failure comes back as the body
/// returned it (a 429 still makes the family's other callers wait out the server's hint). When
/// a budget above 0 is spent, the call fails with `ratelimited::Error::RetriesExhausted`.
///
/// # `stream`
///
/// A flag (no value) for a function that returns a stream: declare
/// `-> Result<ratelimited::stream::RateLimitedStream<S>, E>` and return the bare `S` from the body,
/// where `S: Stream<Item = Result<Chunk, E2>>` and `Chunk: ratelimited::stream::StreamUsage`.
/// The reservation and its in-flight slot are held until the stream ends (settled from the
/// chunks' usage) or is dropped (kept); an `Err` from the body before the stream (a 429 or 5xx
/// on the initial response) is retried as usual, an `Err` item inside the stream never is.
/// See `ratelimited::stream`.
///
/// # `priority`
///
/// The lane this function's calls wait in when the family is saturated: an expression of type
/// `ratelimited::Priority` (`Priority::Interactive`, `Priority::Normal`, the default, or
/// `Priority::Batch`), which may use the arguments (`priority = req.priority`). A higher lane
/// is admitted first; a lower lane keeps a guaranteed share (see the README's "Priority lanes").
///
/// # `tenant`
///
/// Who the call is made for, when many users share one provider key: any expression of the
/// arguments that gives a string or an integer id (`&str`, `String`, an integer, or a
/// `ratelimited::Tenant`), `tenant = user` or `tenant = request.customer_id`. Within its lane the
/// family's calls take turns by tenant (weighted fair queuing on tokens), under each tenant's
/// caps (`RATE_LIMITED_<FAMILY>_TENANT_<DIM>`) and budget
/// (`RATE_LIMITED_<FAMILY>_TENANT_BUDGET_*`), and the stats and events count them as the
/// tenant's (see the README's "Many users on one key"). An argument that *is* the tenant is
/// not counted as prompt text. With `pool = ..` the pool's queue takes turns by tenant too,
/// and each attempt counts on its deployment's family as a single family's call does.
///
/// # `crate`
///
/// Where the `ratelimited` crate is, as a string literal holding a path, when it is renamed or
/// re-exported (`::ratelimited` otherwise):
///
/// ```
/// extern crate ratelimited as limits;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<limits::Error> for ApiError { fn from(_: limits::Error) -> Self { ApiError } }
/// # impl limits::Classify for ApiError { fn classify(&self) -> limits::Verdict { limits::Verdict::Fatal } }
///
/// #[limits::rate_limited(model = "gpt-4o-mini", crate = "limits")]
/// pub async fn summarize(text: &str) -> Result<String, ApiError> {
///     Ok(text.to_owned())
/// }
/// # fn main() {}
/// ```
///
/// # Keys and destructured arguments
///
/// The keys (`model`, `pool`, `tier`, `provider`, `tokens`, `max_tokens`, `n`, `priority`,
/// `tenant`) may
/// use the names a destructuring pattern binds. For an argument passed by `&` reference they
/// are what the body sees; for one passed by value or by `&mut`, shared references to the
/// argument's parts (the keys run once, before the argument is moved or reborrowed into the
/// body), which the keys take as they are (`priority = *lane` for a `Priority`):
///
/// ```
/// # use ratelimited::rate_limited;
/// # #[derive(Debug)] pub struct ApiError;
/// # impl From<ratelimited::Error> for ApiError { fn from(_: ratelimited::Error) -> Self { ApiError } }
/// # impl ratelimited::Classify for ApiError { fn classify(&self) -> ratelimited::Verdict { ratelimited::Verdict::Fatal } }
/// #[derive(Clone)]
/// pub struct Request {
///     pub model: String,
///     pub prompt: String,
///     pub max_tokens: u32,
/// }
/// # impl ratelimited::EstimateTokens for Request {
/// #     fn estimate_tokens(&self, encoding: ratelimited::tokens::Encoding) -> u64 {
/// #         ratelimited::EstimateTokens::estimate_tokens(&self.prompt, encoding)
/// #     }
/// # }
///
/// // `model` is a `&String` and `max_tokens` a `&u32` here (`*max_tokens` is the `u32`); the
/// // request is estimated as a whole, through its `EstimateTokens`.
/// #[rate_limited(model = model, max_tokens = max_tokens)]
/// pub async fn complete(
///     Request { model, prompt, max_tokens }: Request,
/// ) -> Result<String, ApiError> {
///     Ok(format!("{model}: {prompt} ({max_tokens})"))
/// }
/// # fn main() {}
/// ```
///
/// # Arguments and retries
///
/// Each attempt runs the body afresh, as if the function had been called again:
///
/// - `&T` arguments (and `&self`) are used as they are;
/// - `&mut T` arguments (and `&mut self`) are reborrowed per attempt: changes an attempt makes
///   through them stay;
/// - arguments passed by value (and `self`) are cloned per attempt, so they must be `Clone`;
///   take them by reference or set `retries = 0` if they are not;
/// - `return` and `?` in the body end the attempt: its result is classified, then returned or
///   retried.
///
/// With retries, `self` and `&mut self` are renamed inside the body (a clone or reborrow cannot
/// be bound to `self`); compiler messages about them may call them `__rl_self`.
///
/// # Equivalent code without `#[rate_limited]`
///
/// Roughly, with the `#[doc(hidden)]` support module the expansion uses (not a public API):
///
/// ```text
/// async fn summarize(client: &Client, text: &str) -> Result<String, ApiError> {
///     let mut call = Call::new("gpt-4o-mini", None, None, None).map_err(ApiError::from)?;
///     // `client` offers no text: it counts zero (and is not warned about, `text` counts).
///     call.estimate(text.len(), |encoding| text.estimate_tokens(encoding));
///     loop {
///         let attempt = call.acquire().await.map_err(ApiError::from)?;
///         let result = async { client.chat("gpt-4o-mini", text).await }.await;
///         match call.finish(attempt, &result).await.map_err(ApiError::from)? {
///             Next::Return => return result,
///             Next::Retry => continue,
///         }
///     }
/// }
/// ```
///
/// With `pool = "gpt-4o", deployment = deployment` the call is a `PoolCall::new("gpt-4o",
/// None)` and each attempt binds `let deployment: &Deployment = attempt.deployment();` before
/// the body runs (`PoolCall::run` is the same loop as a closure).
///
/// # Limitations
///
/// - `impl Trait` in the return type is not supported: name the type or box it.
/// - With retries, a borrow of a `&mut` argument (or of `&mut self`) cannot be returned, since
///   each attempt has its own reborrow; with `retries = 0` it can.
/// - Inside an `#[async_trait]` impl the method is no longer an `async fn` by the time this
///   attribute sees it: use a native `async fn` in the trait, or annotate an inherent
///   `async fn` that the trait method calls.
#[proc_macro_attribute]
pub fn rate_limited(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    entry::rate_limited(args.into(), item.into()).into()
}
