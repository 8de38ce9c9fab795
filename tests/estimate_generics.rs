//! No silent zero: a prompt passed through a generic, a tuple, a `Display` type or a
//! destructuring pattern reserves what the same text reserves as a plain `&str` argument, and
//! one the limiter cannot read is named in a warning at the function's first call.
//!
//! Observed as in tests/estimate_args.rs: what a call leaves reserved on `gpt-4o-mini`'s
//! tokens-per-minute bucket (the result reports no usage, so the estimate stays), each call in a
//! fresh registry, in paused time so nothing refills in between. Warnings are caught by a small
//! `tracing` subscriber set for the test's thread (`#[tokio::test]` runs on one thread).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use ratelimited::testing::fresh_registry_with_env;
use ratelimited::tokens::{count_tokens, encoding_for_model, Encoding};
use ratelimited::{rate_limited, EstimateTokens};

mod common;
use common::{reserved_tokens, ApiError};

mod warnings_support;
use warnings_support::Warnings;

const PROMPT: &str = "Summarize the plot of Moby-Dick in three sentences, for a reader who \
                      has never heard of Captain Ahab or the white whale.";

/// What one call leaves reserved, in a registry of its own.
async fn reservation(call: impl Future<Output = Result<(), ApiError>>) -> u64 {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    call.await.unwrap();
    reserved_tokens()
}

fn tokens_of(text: &str) -> u64 {
    count_tokens(encoding_for_model("gpt-4o-mini"), text)
}

/// The reference every shape is compared with: the text as a plain `&str` argument.
#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn plain(prompt: &str) -> Result<(), ApiError> {
    let _ = prompt;
    Ok(())
}

/// A client: not text, and nothing the limiter can read.
struct Client;

// ---- AsRef<str>: read where the function's bounds say so ----

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn impl_as_ref(prompt: impl AsRef<str> + Clone) -> Result<(), ApiError> {
    let _ = prompt.as_ref();
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn bounded<P: AsRef<str> + Clone>(prompt: P) -> Result<(), ApiError> {
    let _ = prompt.as_ref();
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn bounded_in_where<P>(_client: &Client, prompt: &P) -> Result<(), ApiError>
where
    P: AsRef<str> + ?Sized,
{
    let _ = prompt.as_ref();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_as_ref_str_prompt_counts_like_a_plain_str() {
    let expected = reservation(plain(PROMPT)).await;
    assert_eq!(expected, tokens_of(PROMPT));
    assert_eq!(reservation(impl_as_ref(PROMPT)).await, expected);
    assert_eq!(reservation(impl_as_ref(PROMPT.to_owned())).await, expected);
    assert_eq!(reservation(bounded(PROMPT)).await, expected);
    assert_eq!(reservation(bounded(PROMPT.to_owned())).await, expected);
    assert_eq!(
        reservation(bounded_in_where(&Client, PROMPT)).await,
        expected
    );
}

// ---- Into<String>: nothing can be read without consuming it, so the zero is named ----

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn into_string_prompt(
    _client: &Client,
    prompt: impl Into<String> + Clone,
) -> Result<(), ApiError> {
    let _: String = prompt.into();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_into_string_prompt_is_named_in_one_warning() {
    let (warnings, _guard) = Warnings::catch();
    assert_eq!(reservation(into_string_prompt(&Client, PROMPT)).await, 0);
    assert_eq!(reservation(into_string_prompt(&Client, PROMPT)).await, 0);

    let warned = warnings.about("into_string_prompt");
    assert_eq!(
        warned.len(),
        1,
        "one warning, at the first call: {warned:?}"
    );
    let warning = &warned[0];
    assert!(warning.contains("arguments=`prompt`"), "{warning}");
    assert!(
        !warning.contains("_client"),
        "a client is not text: {warning}"
    );
    for fix in [
        "EstimateTokens",
        "AsRef<str>",
        "tokens = ..",
        "skip(prompt)",
    ] {
        assert!(warning.contains(fix), "names the fix `{fix}`: {warning}");
    }
}

// ---- Cow<str>: counted as itself; `impl Into<Cow<str>>` cannot be read ----

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn cow(prompt: Cow<'_, str>) -> Result<(), ApiError> {
    let _ = prompt;
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn into_cow<'a>(prompt: impl Into<Cow<'a, str>> + Clone) -> Result<(), ApiError> {
    let _: Cow<'_, str> = prompt.into();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cow_prompt_counts_and_an_into_cow_one_is_named() {
    let (warnings, _guard) = Warnings::catch();
    let expected = reservation(plain(PROMPT)).await;
    assert_eq!(reservation(cow(Cow::Borrowed(PROMPT))).await, expected);
    assert_eq!(
        reservation(cow(Cow::Owned(PROMPT.to_owned()))).await,
        expected
    );
    assert!(warnings.about("cow").is_empty());

    assert_eq!(reservation(into_cow(PROMPT)).await, 0);
    let warned = warnings.about("into_cow");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("arguments=`prompt`"), "{}", warned[0]);
}

// ---- Tuples: the character charge of OpenAI and Azure ----

/// Indented code: more bytes per token than prose, so OpenAI's bytes / 4 charge is above the
/// token count and decides the reservation.
const CODE: &str =
    "fn main() {\n        let total = 0;\n        for entry in entries {\n            \
                    total += entry;\n        }\n}\n";
const MORE_CODE: &str =
    "        if total > 0 {\n                println!(\"{total}\");\n        }\n";

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn two_arguments(first: &str, second: &str) -> Result<(), ApiError> {
    let _ = (first, second);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn one_tuple(parts: (&str, &str)) -> Result<(), ApiError> {
    let _ = parts;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_tuple_is_charged_by_characters_like_its_parts() {
    let by_characters = ((CODE.len() + MORE_CODE.len()) as u64).div_ceil(4);
    let by_tokens = tokens_of(CODE) + tokens_of(MORE_CODE);
    assert!(by_characters > by_tokens, "{by_characters} > {by_tokens}");

    let expected = reservation(two_arguments(CODE, MORE_CODE)).await;
    assert_eq!(expected, by_characters);
    assert_eq!(reservation(one_tuple((CODE, MORE_CODE))).await, expected);
}

// ---- Display: the text a type shows is its prompt text (numbers are not) ----

/// A prompt template that renders itself.
#[derive(Clone)]
struct Question {
    topic: &'static str,
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Summarize the plot of {} in three sentences, for a reader who has never heard \
             of Captain Ahab or the white whale.",
            self.topic
        )
    }
}

const QUESTION: Question = Question { topic: "Moby-Dick" };

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn shown(question: &Question) -> Result<(), ApiError> {
    let _ = question;
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn shown_generic(question: impl fmt::Display + Clone) -> Result<(), ApiError> {
    let _ = question.to_string();
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn to_string_generic<T: ToString + Clone>(question: T) -> Result<(), ApiError> {
    let _ = question.to_string();
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn with_numbers(prompt: &str, limit: u32, temperature: f32) -> Result<(), ApiError> {
    let _ = (prompt, limit, temperature);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_display_type_counts_its_text_and_numbers_do_not() {
    assert_eq!(QUESTION.to_string(), PROMPT);
    let expected = reservation(plain(PROMPT)).await;
    assert_eq!(reservation(shown(&QUESTION)).await, expected);
    assert_eq!(reservation(shown_generic(QUESTION)).await, expected);
    assert_eq!(reservation(to_string_generic(QUESTION)).await, expected);
    assert_eq!(
        reservation(with_numbers(PROMPT, 4_096, 0.2)).await,
        expected
    );
}

// ---- Which zeros are named ----

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn client_and_prompt(client: &Client, prompt: &str) -> Result<(), ApiError> {
    let _ = (client, prompt);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0, skip(client))]
async fn client_only_skipped(client: &Client) -> Result<(), ApiError> {
    let _ = client;
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0, tokens = 12)]
async fn client_with_tokens(client: &Client) -> Result<(), ApiError> {
    let _ = client;
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn client_only(client: &Client, attempt: u32) -> Result<(), ApiError> {
    let _ = (client, attempt);
    Ok(())
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 0)]
async fn system_and_generic_prompt<S>(
    client: &Client,
    system: &str,
    prompt: S,
) -> Result<(), ApiError>
where
    S: Into<String> + Clone,
{
    let _ = (client, system, prompt.into());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_client_is_named_only_when_nothing_counted() {
    let (warnings, _guard) = Warnings::catch();
    let expected = reservation(plain(PROMPT)).await;
    assert_eq!(
        reservation(client_and_prompt(&Client, PROMPT)).await,
        expected
    );
    assert_eq!(reservation(client_only_skipped(&Client)).await, 0);
    assert_eq!(reservation(client_with_tokens(&Client)).await, 12);
    assert_eq!(warnings.all(), Vec::<String>::new());

    assert_eq!(reservation(client_only(&Client, 1)).await, 0);
    let warned = warnings.about("::client_only ");
    assert_eq!(warned.len(), 1, "{warned:?}");
    // `attempt` is a number: not text, never named.
    assert!(warned[0].contains("arguments=`client`"), "{}", warned[0]);
}

#[tokio::test(start_paused = true)]
async fn a_text_typed_argument_counted_zero_is_named_beside_a_counted_one() {
    let (warnings, _guard) = Warnings::catch();
    let system_only = reservation(plain("You are terse.")).await;
    assert_eq!(
        reservation(system_and_generic_prompt(&Client, "You are terse.", PROMPT)).await,
        system_only
    );
    let warned = warnings.about("system_and_generic_prompt");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("arguments=`prompt`"), "{}", warned[0]);
}

// ---- Destructuring patterns: their names in the attribute's keys ----

#[derive(Clone)]
struct Request {
    model: String,
    prompt: String,
    max_tokens: u32,
}

impl EstimateTokens for Request {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        self.prompt.estimate_tokens(encoding)
    }

    fn text_len(&self) -> usize {
        self.prompt.len()
    }
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 40)]
async fn plain_with_budget(prompt: &str) -> Result<(), ApiError> {
    let _ = prompt;
    Ok(())
}

/// Passed by value: in the keys, the pattern's names are references to the argument's parts.
#[rate_limited(model = model, max_tokens = max_tokens)]
async fn destructured(
    Request {
        model,
        prompt,
        max_tokens,
    }: Request,
) -> Result<(), ApiError> {
    let _ = (model, prompt, max_tokens);
    Ok(())
}

/// Passed by reference: the keys see what the body sees.
#[rate_limited(model = model.as_str(), max_tokens = *max_tokens, tokens = prompt.len() / 4)]
async fn destructured_by_reference(
    Request {
        model,
        prompt,
        max_tokens,
    }: &Request,
) -> Result<(), ApiError> {
    let _ = (model, prompt, max_tokens);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn names_bound_by_a_pattern_can_be_used_in_the_keys() {
    let request = Request {
        model: "gpt-4o-mini".to_owned(),
        prompt: PROMPT.to_owned(),
        max_tokens: 40,
    };
    let expected = reservation(plain_with_budget(PROMPT)).await;
    assert_eq!(expected, tokens_of(PROMPT) + 40);
    assert_eq!(reservation(destructured(request.clone())).await, expected);
    assert_eq!(
        reservation(destructured_by_reference(&request)).await,
        (PROMPT.len() / 4) as u64 + 40
    );
}
