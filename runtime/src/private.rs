//! Support for the code `#[rate_limited]` generates. Not a public API: it may change in any
//! release. The facade re-exports it as `ratelimited::__private`.

use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::call::pool::{PoolAttempt, PoolCall};
pub use crate::call::{Attempt, Call, Next};
use crate::limiter::lanes::Priority;
pub use crate::model::output::{MaxOutput, OutputBudget};
use crate::model::tokens::{count_tokens, Encoding};
pub use crate::pool::Deployment;
pub use crate::units::error::Error;
use crate::units::tenant::Tenant;
use crate::EstimateTokens;

/// What `tenant = ..` accepts: a string or an integer id, or a [`Tenant`], by reference or
/// not.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tenant id",
    label = "`tenant = ..` takes a string or an integer id",
    note = "pass a `&str`, `String`, an integer or a `ratelimited::Tenant`: `tenant = user.id`, \
            `tenant = workspace.as_str()`"
)]
pub trait TenantId {
    /// The tenant this id names.
    fn tenant(&self) -> Tenant;
}

impl TenantId for str {
    fn tenant(&self) -> Tenant {
        Tenant::from(self)
    }
}

impl TenantId for String {
    fn tenant(&self) -> Tenant {
        Tenant::from(self.as_str())
    }
}

impl TenantId for Tenant {
    fn tenant(&self) -> Tenant {
        self.clone()
    }
}

impl<T: TenantId + ?Sized> TenantId for &T {
    fn tenant(&self) -> Tenant {
        (**self).tenant()
    }
}

macro_rules! tenant_id_integer {
    ($($ty:ty),*) => {$(
        impl TenantId for $ty {
            fn tenant(&self) -> Tenant {
                Tenant::from(*self)
            }
        }
    )*};
}

tenant_id_integer!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

/// The tenant `tenant = ..` names.
pub fn tenant_of<T: TenantId + ?Sized>(id: &T) -> Tenant {
    id.tenant()
}

/// Wraps a reference to an argument so method resolution can pick, from what the argument's
/// type offers, how it is estimated (autoref specialization).
///
/// The prompt estimate is a ladder of five traits, one method name, each implemented for `Arg`
/// under a different number of references: the expansion calls `(&&&&&Arg(&x)).__rl_prompt()`,
/// and method resolution takes the first level whose bound the type meets, dereferencing once
/// per level: [`ViaEstimate`], [`ViaText`], [`ViaNotText`], [`ViaDisplay`], [`ViaNothing`].
/// Inside a generic function the bounds are those the function declares: `P: AsRef<str>`
/// reaches [`ViaText`], a bare `impl Into<String>` falls through to [`ViaNothing`].
///
/// The output budget is a ladder of two: `(&Arg(&x)).__rl_budget()`.
pub struct Arg<'a, T: ?Sized>(pub &'a T);

/// What an argument offers the prompt estimate.
pub enum Prompt<'a> {
    /// Its type implements [`EstimateTokens`].
    Estimated(&'a dyn EstimateTokens),
    /// Its type implements `AsRef<str>`: the text itself.
    Text(&'a str),
    /// Its type implements `Display` (or `ToString`): the text it shows.
    Rendered(String),
    /// A number, `bool`, `char`, `Duration` or `Priority`: a parameter, not prompt text.
    NotText,
    /// Nothing the limiter can read: it counts zero.
    Unknown,
}

impl Prompt<'_> {
    fn text_len(&self) -> usize {
        match self {
            Prompt::Estimated(value) => value.text_len(),
            Prompt::Text(text) => text.len(),
            Prompt::Rendered(text) => text.len(),
            Prompt::NotText | Prompt::Unknown => 0,
        }
    }

    fn image_tokens(&self) -> u64 {
        match self {
            Prompt::Estimated(value) => value.image_tokens(),
            Prompt::Text(_) | Prompt::Rendered(_) | Prompt::NotText | Prompt::Unknown => 0,
        }
    }

    fn estimate(&self, encoding: Encoding) -> u64 {
        match self {
            Prompt::Estimated(value) => value.estimate_tokens(encoding),
            Prompt::Text(text) => count_tokens(encoding, text),
            Prompt::Rendered(text) => count_tokens(encoding, text),
            Prompt::NotText | Prompt::Unknown => 0,
        }
    }

    fn is_counted(&self) -> bool {
        matches!(
            self,
            Prompt::Estimated(_) | Prompt::Text(_) | Prompt::Rendered(_)
        )
    }
}

/// Level 1: the argument's type implements [`EstimateTokens`].
pub trait ViaEstimate<'a> {
    /// What the argument offers the estimate.
    fn __rl_prompt(&self) -> Prompt<'a>;
}

impl<'a, T: EstimateTokens> ViaEstimate<'a> for &&&&Arg<'a, T> {
    fn __rl_prompt(&self) -> Prompt<'a> {
        Prompt::Estimated(self.0)
    }
}

/// Level 2: it implements `AsRef<str>`.
pub trait ViaText<'a> {
    /// What the argument offers the estimate.
    fn __rl_prompt(&self) -> Prompt<'a>;
}

impl<'a, T: AsRef<str> + ?Sized> ViaText<'a> for &&&Arg<'a, T> {
    fn __rl_prompt(&self) -> Prompt<'a> {
        Prompt::Text(self.0.as_ref())
    }
}

/// A type whose values are parameters of a request, never its prompt text, although it
/// implements `Display`: numbers, `bool`, `char`, `Duration`, `Priority`.
pub trait NotPromptText {}

macro_rules! not_prompt_text {
    ($($t:ty),*) => {$(
        impl NotPromptText for $t {}
    )*};
}
not_prompt_text!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    (),
    std::time::Duration,
    Priority
);

impl<T: NotPromptText + ?Sized> NotPromptText for &T {}
impl<T: NotPromptText + ?Sized> NotPromptText for &mut T {}
impl<T: NotPromptText> NotPromptText for Option<T> {}

/// Level 3: it is [not prompt text](NotPromptText).
pub trait ViaNotText<'a> {
    /// What the argument offers the estimate.
    fn __rl_prompt(&self) -> Prompt<'a>;
}

impl<'a, T: NotPromptText + ?Sized> ViaNotText<'a> for &&Arg<'a, T> {
    fn __rl_prompt(&self) -> Prompt<'a> {
        Prompt::NotText
    }
}

/// Level 4: it implements `Display` (through `ToString`, which a generic function may name
/// instead).
pub trait ViaDisplay<'a> {
    /// What the argument offers the estimate.
    fn __rl_prompt(&self) -> Prompt<'a>;
}

impl<'a, T: ToString + ?Sized> ViaDisplay<'a> for &Arg<'a, T> {
    fn __rl_prompt(&self) -> Prompt<'a> {
        Prompt::Rendered(self.0.to_string())
    }
}

/// Level 5, every other type: the argument counts zero.
pub trait ViaNothing<'a> {
    /// What the argument offers the estimate.
    fn __rl_prompt(&self) -> Prompt<'a>;
}

impl<'a, T: ?Sized> ViaNothing<'a> for Arg<'a, T> {
    fn __rl_prompt(&self) -> Prompt<'a> {
        Prompt::Unknown
    }
}

/// One argument in the prompt estimate.
pub struct PromptArg<'a> {
    /// The argument's name in the signature.
    pub name: &'static str,
    /// Whether its declared type speaks of text (`impl Into<String>`, `P: Display`, ..), so
    /// that counting it zero is surely a missed prompt.
    pub names_text: bool,
    /// What it offers.
    pub prompt: Prompt<'a>,
}

/// An annotated function, for a warning given once.
pub struct Site {
    function: &'static str,
    warned: AtomicBool,
}

impl Site {
    /// The function at `function` (its path), not warned about yet.
    pub const fn new(function: &'static str) -> Site {
        Site {
            function,
            warned: AtomicBool::new(false),
        }
    }
}

/// A call the arguments' prompt estimate goes to: a [`Call`] on one family, or a [`PoolCall`]
/// (which counts with each distinct tokenizer of its deployments and keeps the largest).
pub trait Estimating {
    /// Adds the estimate `estimate` computes; `text_len` is the arguments' text in bytes.
    fn estimate_prompt(&mut self, text_len: usize, estimate: &dyn Fn(Encoding) -> u64);
    /// Records that `tokens` of the estimate are images.
    fn estimate_image_tokens(&mut self, tokens: u64);
}

impl Estimating for Call {
    fn estimate_prompt(&mut self, text_len: usize, estimate: &dyn Fn(Encoding) -> u64) {
        self.estimate(text_len, estimate);
    }

    fn estimate_image_tokens(&mut self, tokens: u64) {
        self.estimate_images(tokens);
    }
}

impl Estimating for PoolCall {
    fn estimate_prompt(&mut self, text_len: usize, estimate: &dyn Fn(Encoding) -> u64) {
        self.estimate(text_len, estimate);
    }

    fn estimate_image_tokens(&mut self, tokens: u64) {
        self.estimate_images(tokens);
    }
}

/// Adds the arguments' prompt estimate to the call, and names the arguments that counted zero
/// for want of anything to read in one `warn` per function, at its first call with them:
///
/// - those whose declared type speaks of text (`impl Into<String>`, `S: Into<String>`,
///   `Vec<T>` with `T: Display`): a prompt passed through a conversion the limiter cannot see
///   through;
/// - else, when no argument counted at all, every one that counted zero (a request struct
///   without `EstimateTokens`, a client): the call reserves no prompt tokens.
///
/// A client beside a counted prompt, and numbers, are never named.
pub fn estimate_arguments<C: Estimating>(call: &mut C, site: &Site, args: &[PromptArg<'_>]) {
    let text_len = args
        .iter()
        .fold(0usize, |len, arg| len.saturating_add(arg.prompt.text_len()));
    call.estimate_prompt(text_len, &|encoding| {
        args.iter().fold(0u64, |tokens, arg| {
            tokens.saturating_add(arg.prompt.estimate(encoding))
        })
    });
    call.estimate_image_tokens(args.iter().fold(0u64, |tokens, arg| {
        tokens.saturating_add(arg.prompt.image_tokens())
    }));
    if site.warned.load(Ordering::Relaxed) {
        return;
    }
    let unread = uncounted(args);
    if !unread.is_empty() && !site.warned.swap(true, Ordering::Relaxed) {
        let names = unread.join("`, `");
        tracing::warn!(
            function = site.function,
            arguments = %format_args!("`{names}`"),
            "the prompt estimate counts these arguments as zero: their types offer the \
             limiter no text where the function is compiled (no `EstimateTokens`, `AsRef<str>` \
             or `Display` bound), so each call reserves too little; bound them \
             (`impl AsRef<str>`, `P: EstimateTokens`), give the estimate with \
             `#[rate_limited(tokens = ..)]`, or leave them out with `skip({})`",
            unread.join(", ")
        );
    }
}

/// The arguments [`estimate_arguments`] warns about.
fn uncounted(args: &[PromptArg<'_>]) -> Vec<&'static str> {
    let unknown = || {
        args.iter()
            .filter(|arg| matches!(arg.prompt, Prompt::Unknown))
    };
    let text: Vec<_> = unknown()
        .filter(|arg| arg.names_text)
        .map(|arg| arg.name)
        .collect();
    if !text.is_empty() || args.iter().any(|arg| arg.prompt.is_counted()) {
        return text;
    }
    unknown().map(|arg| arg.name).collect()
}

/// Picked when the argument's type implements [`OutputBudget`].
pub trait ViaBudget {
    /// The argument's output budget.
    fn __rl_budget(&self) -> Option<MaxOutput>;
}

impl<T: OutputBudget + ?Sized> ViaBudget for Arg<'_, T> {
    fn __rl_budget(&self) -> Option<MaxOutput> {
        Some(self.0.output_budget())
    }
}

/// Picked when it does not.
pub trait ViaNoBudget {
    /// `None`.
    fn __rl_budget(&self) -> Option<MaxOutput> {
        None
    }
}

impl<T: ?Sized> ViaNoBudget for &Arg<'_, T> {}

/// An error type that can carry the limiter's own failures.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a rate-limiter error",
    label = "`#[rate_limited]` returns limiter failures through this error type",
    note = "implement `From<ratelimited::Error>` for `{Self}` (request too large, retry-after \
            too long, retries spent and configuration errors come back through it)",
    note = "for an error type from another crate (`std::io::Error`, a client's error) the \
            orphan rule forbids that impl: return `ratelimited::CallError` instead, which holds the limiter's errors and any other \
            error, or wrap the error in a newtype of your own (`struct MyError(std::io::Error)`) \
            and implement `From<ratelimited::Error>` and `Classify` for that"
)]
pub trait FromLimiterError {
    /// Converts.
    fn from_limiter_error(error: Error) -> Self;
}

impl<E: From<Error>> FromLimiterError for E {
    fn from_limiter_error(error: Error) -> Self {
        E::from(error)
    }
}

/// Converts a limiter error into the function's error type.
pub fn into_error<E: FromLimiterError>(error: Error) -> E {
    E::from_limiter_error(error)
}

/// The return type of a rate-limited function.
#[diagnostic::on_unimplemented(
    message = "`#[rate_limited]` functions must return a `Result`, not `{Self}`",
    label = "the limiter reports its failures through the `Err` variant",
    note = "return `Result<T, E>` where `E: From<ratelimited::Error>`"
)]
pub trait Outcome {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;

    /// The result the runtime settles. Going through this trait (not a `&Result` parameter)
    /// makes a return type that is not a `Result` one error, at the return type.
    fn as_result(&self) -> &Result<Self::Ok, Self::Err>;

    /// The function's value for a limiter failure (converted by [`into_error`]).
    fn from_err(error: Self::Err) -> Self;
}

// Not recommended: a return type that is not a `Result` gets the message above, without a
// note pointing at this impl inside the library.
#[diagnostic::do_not_recommend]
impl<T, E> Outcome for Result<T, E> {
    type Ok = T;
    type Err = E;

    fn as_result(&self) -> &Result<T, E> {
        self
    }

    fn from_err(error: E) -> Self {
        Err(error)
    }
}

/// An argument the call can run again with.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is passed by value to a function that may retry, so it must be `Clone`",
    label = "the body runs again on retry and needs this argument again",
    note = "take it by reference (`&{Self}`), implement `Clone`, or set `retries = 0`"
)]
pub trait RetryClone {}

impl<T: Clone> RetryClone for T {}

/// Checks (at compile time) that an owned argument can be cloned for a retry.
pub fn require_clone<T: RetryClone + ?Sized>(_: &T) {}

/// A `model = ..` value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a model name",
    label = "`model` takes a `&str`, `String`, `&String` or `Cow<str>`",
    note = "for an `Option<&str>`, write out its fallback: \
            `model = name.unwrap_or(\"gpt-4o-mini\")` (`name.as_deref().unwrap_or(..)` for an \
            `Option<String>`)"
)]
pub trait ModelName {
    /// The name.
    fn model_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> ModelName for T {
    fn model_name(&self) -> &str {
        self.as_ref()
    }
}

/// `model = ..` as a `&str`.
pub fn model_name<T: ModelName + ?Sized>(name: &T) -> &str {
    name.model_name()
}

/// A `pool = ..` value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pool name",
    label = "`pool` takes a `&str`, `String`, `&String` or `Cow<str>`",
    note = "for an `Option<&str>`, write out its fallback: \
            `pool = name.unwrap_or(\"gpt-4o\")` (`name.as_deref().unwrap_or(..)` for an \
            `Option<String>`)"
)]
pub trait PoolName {
    /// The name.
    fn pool_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> PoolName for T {
    fn pool_name(&self) -> &str {
        self.as_ref()
    }
}

/// `pool = ..` as a `&str`.
pub fn pool_name<T: PoolName + ?Sized>(name: &T) -> &str {
    name.pool_name()
}

/// A `tier = ..` value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tier name",
    label = "`tier` takes a `&str`, `String`, `&String` or `Cow<str>`",
    note = "for an `Option<&str>`, write out its fallback: `tier = tier.unwrap_or(\"tier-1\")` \
            (`tier.as_deref().unwrap_or(..)` for an `Option<String>`), or leave `tier` out to \
            take it from the environment"
)]
pub trait TierName {
    /// The name.
    fn tier_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> TierName for T {
    fn tier_name(&self) -> &str {
        self.as_ref()
    }
}

/// `tier = ..` as a `&str`.
pub fn tier_name<T: TierName + ?Sized>(name: &T) -> &str {
    name.tier_name()
}

/// A `provider = ..` value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a provider name",
    label = "`provider` takes a `&str`, `String`, `&String` or `Cow<str>`",
    note = "for an `Option<&str>`, write out its fallback: \
            `provider = name.unwrap_or(\"openai\")` (`name.as_deref().unwrap_or(..)` for an \
            `Option<String>`), or leave `provider` out to infer it from the model name"
)]
pub trait ProviderName {
    /// The name.
    fn provider_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> ProviderName for T {
    fn provider_name(&self) -> &str {
        self.as_ref()
    }
}

/// `provider = ..` as a `&str`.
pub fn provider_name<T: ProviderName + ?Sized>(name: &T) -> &str {
    name.provider_name()
}

/// An integer count given to `tokens`, `max_tokens` or `n`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a token count",
    note = "pass an unsigned or signed integer (negative values count as 0)"
)]
pub trait TokenCount {
    /// The count as `u64`, saturating.
    fn to_count(self) -> u64;
}

macro_rules! token_count {
    ($($t:ty),*) => {$(
        impl TokenCount for $t {
            #[allow(clippy::cast_sign_loss, clippy::cast_lossless, irrefutable_let_patterns)]
            fn to_count(self) -> u64 {
                u64::try_from(self).unwrap_or(if self > 0 as $t { u64::MAX } else { 0 })
            }
        }
    )*};
}
token_count!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<T: TokenCount + Copy> TokenCount for &T {
    fn to_count(self) -> u64 {
        (*self).to_count()
    }
}

impl<T: TokenCount> TokenCount for Option<T> {
    fn to_count(self) -> u64 {
        self.map_or(0, TokenCount::to_count)
    }
}

/// `tokens = ...` / `max_tokens = ...` as a count.
pub fn token_count<N: TokenCount>(n: N) -> u64 {
    n.to_count()
}

/// `n = ...` as a count of choices.
pub fn choice_count<N: TokenCount>(n: N) -> u32 {
    u32::try_from(n.to_count()).unwrap_or(u32::MAX)
}

pub use crate::call::stream::RateLimitedStream;

/// The rate-limit headers a stream came with, for the expansion of a `stream` function:
/// `(&&stream).rate_limit_headers_of_stream()` finds them on a
/// [`WithHeaders`](crate::answers::usage::WithHeaders) stream (this impl, one reference
/// closer), and `None` on any other ([`NoStreamHeaders`]).
pub trait StreamHeadersOf {
    fn rate_limit_headers_of_stream(&self) -> Option<crate::answers::http::RateLimitHeaders>;
}

impl<S> StreamHeadersOf for &crate::answers::usage::WithHeaders<S> {
    fn rate_limit_headers_of_stream(&self) -> Option<crate::answers::http::RateLimitHeaders> {
        Some(self.headers.clone())
    }
}

/// See [`StreamHeadersOf`]: a stream without headers.
pub trait NoStreamHeaders {
    fn rate_limit_headers_of_stream(&self) -> Option<crate::answers::http::RateLimitHeaders> {
        None
    }
}

impl<T> NoStreamHeaders for &&T {}

/// The success type of a `#[rate_limited(.., stream)]` function: `RateLimitedStream<S>`, whose
/// body returns the bare `S`.
#[diagnostic::on_unimplemented(
    message = "a `#[rate_limited(.., stream)]` function must return \
               `Result<RateLimitedStream<S>, E>`, not `Result<{Self}, E>`",
    label = "the limiter wraps the body's stream to hold the reservation until the stream ends",
    note = "declare `-> Result<ratelimited::RateLimitedStream<S>, E>` and return `Ok(stream)` \
            (of type `S`) from the body",
    note = "for a function that returns a whole response, not a stream, remove `stream`"
)]
pub trait StreamReturn {
    /// The stream the body returns.
    type Stream;
}

impl<S> StreamReturn for RateLimitedStream<S> {
    type Stream = S;
}

#[cfg(test)]
// The references are the ladder's rungs: method resolution takes one off per level.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    fn arg(name: &'static str, names_text: bool, prompt: Prompt<'static>) -> PromptArg<'static> {
        PromptArg {
            name,
            names_text,
            prompt,
        }
    }

    #[test]
    fn the_ladder_takes_the_first_thing_a_type_offers() {
        struct Shown;
        impl std::fmt::Display for Shown {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("shown")
            }
        }
        struct Opaque;
        let text = String::from("text");
        let path = std::path::PathBuf::from("p");
        assert!(matches!(
            (&&&&&Arg(&text)).__rl_prompt(),
            Prompt::Estimated(_)
        ));
        let boxed: Box<str> = "boxed".into();
        assert!(matches!(
            (&&&&&Arg(&boxed)).__rl_prompt(),
            Prompt::Estimated(_)
        ));
        assert!(matches!(
            (&&&&&Arg(&std::ffi::OsString::new())).__rl_prompt(),
            Prompt::Unknown
        ));
        assert!(matches!((&&&&&Arg(&7u32)).__rl_prompt(), Prompt::NotText));
        assert!(matches!(
            (&&&&&Arg(&&0.5f64)).__rl_prompt(),
            Prompt::NotText
        ));
        assert!(matches!(
            (&&&&&Arg(&Some(Priority::Batch))).__rl_prompt(),
            Prompt::NotText
        ));
        assert!(matches!(
            (&&&&&Arg(&Shown)).__rl_prompt(),
            Prompt::Rendered(text) if text == "shown"
        ));
        assert!(matches!((&&&&&Arg(&Opaque)).__rl_prompt(), Prompt::Unknown));
        assert!(matches!((&&&&&Arg(&path)).__rl_prompt(), Prompt::Unknown));
    }

    #[test]
    fn a_generic_is_read_through_the_bounds_it_declares() {
        fn as_ref<P: AsRef<str>>(value: &P) -> bool {
            matches!((&&&&&Arg(value)).__rl_prompt(), Prompt::Text("text"))
        }
        fn into_string<P: Into<String>>(value: &P) -> bool {
            matches!((&&&&&Arg(value)).__rl_prompt(), Prompt::Unknown)
        }
        assert!(as_ref(&"text"));
        assert!(into_string(&"text"));
    }

    #[test]
    fn text_typed_arguments_counted_zero_are_named_first() {
        let args = [
            arg("client", false, Prompt::Unknown),
            arg("system", true, Prompt::Text("be brief")),
            arg("prompt", true, Prompt::Unknown),
        ];
        assert_eq!(uncounted(&args), ["prompt"]);
    }

    #[test]
    fn a_client_is_named_only_when_nothing_counted() {
        let counted = [
            arg("client", false, Prompt::Unknown),
            arg("prompt", true, Prompt::Text("")),
        ];
        assert!(uncounted(&counted).is_empty());
        let nothing = [
            arg("client", false, Prompt::Unknown),
            arg("attempt", false, Prompt::NotText),
            arg("request", false, Prompt::Unknown),
        ];
        assert_eq!(uncounted(&nothing), ["client", "request"]);
        let numbers = [arg("seed", false, Prompt::NotText)];
        assert!(uncounted(&numbers).is_empty());
    }
}
