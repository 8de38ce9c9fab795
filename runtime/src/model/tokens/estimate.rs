//! Estimating a request's prompt tokens from its arguments: [`EstimateTokens`] and its impls,
//! and OpenAI's chat-format overhead ([`count_chat`]).

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

use super::{bpe, count_tokens, raw_count, scale, Encoding};

/// One chat message, for [`count_chat`] and [`EstimateTokens`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The message text.
    pub content: String,
    /// The optional participant name.
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message with a role and content and no name.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            name: None,
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::new("assistant", content)
    }

    /// The same message with a participant name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Per-message framing tokens in OpenAI's chat format (gpt-3.5-turbo-0613 and later).
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra token when a message has a `name`.
const TOKENS_PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;

/// The prompt tokens of a chat request with these messages, using OpenAI's formula (the
/// cookbook's `num_tokens_from_messages`): 3 per message plus its role, content and name, 1 more
/// per name, and 3 for the reply priming.
///
/// Tool definitions, images and `max_tokens` are not included. For approximations the whole
/// o200k total (overhead included) is scaled once.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::tokens::{count_chat, count_tokens, ChatMessage, Encoding};
///
/// let enc = Encoding::O200kBase;
/// let messages = [ChatMessage::user("Hello!")];
/// assert_eq!(
///     count_chat(enc, &messages),
///     3 + count_tokens(enc, "user") + count_tokens(enc, "Hello!") + 3
/// );
/// ```
pub fn count_chat(encoding: Encoding, messages: &[ChatMessage]) -> u64 {
    let bpe = bpe(encoding);
    let raw = messages.iter().fold(REPLY_PRIMING, |total, m| {
        let name = m
            .name
            .as_deref()
            .map_or(0, |n| TOKENS_PER_NAME + raw_count(bpe, n));
        total
            .saturating_add(TOKENS_PER_MESSAGE)
            .saturating_add(raw_count(bpe, &m.role))
            .saturating_add(raw_count(bpe, &m.content))
            .saturating_add(name)
    });
    scale(encoding, raw)
}

/// How an argument's type estimates the prompt tokens it contributes to a request.
///
/// The `#[rate_limited]` expansion sums this over the function's arguments (an argument whose
/// type doesn't implement it counts its `AsRef<str>` text, or else its `Display` text, or else
/// zero; `#[rate_limited(tokens = ...)]` replaces the sum).
/// Implemented for `str`, `String`, `Cow<str>`, [`ChatMessage`], `serde_json::Value`, and
/// through `&T`, `&mut T`, `Box<T>`, `Rc<T>`, `Arc<T>`, `Option<T>`, slices, arrays, `Vec<T>`
/// and tuples of up to four. Integers and other non-text types don't implement it: they are
/// not prompt text.
///
/// For your own request type, count the text it sends:
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{tokens::{count_tokens, Encoding}, EstimateTokens};
///
/// struct Summarize { document: String, instructions: String, max_words: u32 }
///
/// impl EstimateTokens for Summarize {
///     fn estimate_tokens(&self, encoding: Encoding) -> u64 {
///         // Two strings, as the request sends them; `max_words` is not prompt text.
///         self.document.estimate_tokens(encoding) + count_tokens(encoding, &self.instructions)
///     }
/// }
/// # let s = Summarize { document: "a b".into(), instructions: "c".into(), max_words: 5 };
/// # assert!(s.estimate_tokens(Encoding::O200kBase) >= 3);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no token estimate",
    label = "the limiter cannot estimate the prompt tokens of this type",
    note = "implement `ratelimited::EstimateTokens` for it (count its prompt text with \
            `ratelimited::count_tokens`), or give the estimate yourself with \
            `#[rate_limited(tokens = ...)]`"
)]
pub trait EstimateTokens {
    /// The prompt tokens this value adds to a request, in `encoding`.
    fn estimate_tokens(&self, encoding: Encoding) -> u64;

    /// The estimate for a slice of values; the sum of the items unless a sequence costs more
    /// than its parts ([`ChatMessage`] overrides it so a conversation gets the reply priming
    /// once, as [`count_chat`] does). Slices, arrays and `Vec`s use it.
    fn estimate_tokens_of_slice(items: &[Self], encoding: Encoding) -> u64
    where
        Self: Sized,
    {
        items.iter().fold(0, |sum, item| {
            sum.saturating_add(item.estimate_tokens(encoding))
        })
    }

    /// Bytes of text the estimate will tokenize, if cheaply known (0 = unknown or small).
    ///
    /// `#[rate_limited]` uses it to count very large prompts off the async executor.
    fn text_len(&self) -> usize {
        0
    }
}

impl EstimateTokens for str {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }

    fn text_len(&self) -> usize {
        self.len()
    }
}

impl EstimateTokens for String {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }

    fn text_len(&self) -> usize {
        self.len()
    }
}

impl EstimateTokens for Cow<'_, str> {
    fn text_len(&self) -> usize {
        self.len()
    }

    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_tokens(encoding, self)
    }
}

macro_rules! delegate_estimate {
    ($($wrapper:ty),*) => {$(
        impl<T: EstimateTokens + ?Sized> EstimateTokens for $wrapper {
            fn estimate_tokens(&self, encoding: Encoding) -> u64 {
                (**self).estimate_tokens(encoding)
            }

            fn text_len(&self) -> usize {
                (**self).text_len()
            }
        }
    )*};
}
delegate_estimate!(&T, &mut T, Box<T>, Rc<T>, Arc<T>);

/// `None` adds nothing.
impl<T: EstimateTokens> EstimateTokens for Option<T> {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        self.as_ref().map_or(0, |v| v.estimate_tokens(encoding))
    }

    fn text_len(&self) -> usize {
        self.as_ref().map_or(0, EstimateTokens::text_len)
    }
}

impl<T: EstimateTokens> EstimateTokens for [T] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

impl<T: EstimateTokens, const N: usize> EstimateTokens for [T; N] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

impl<T: EstimateTokens> EstimateTokens for Vec<T> {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }
}

macro_rules! tuple_estimate {
    ($($name:ident),+) => {
        impl<$($name: EstimateTokens),+> EstimateTokens for ($($name,)+) {
            fn estimate_tokens(&self, encoding: Encoding) -> u64 {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                0u64 $(.saturating_add($name.estimate_tokens(encoding)))+
            }

            fn text_len(&self) -> usize {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                0usize $(.saturating_add($name.text_len()))+
            }
        }
    };
}
tuple_estimate!(A);
tuple_estimate!(A, B);
tuple_estimate!(A, B, C);
tuple_estimate!(A, B, C, D);

/// A single message is a one-message conversation: [`count_chat`] of it, reply priming included.
impl EstimateTokens for ChatMessage {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        count_chat(encoding, std::slice::from_ref(self))
    }

    fn estimate_tokens_of_slice(items: &[Self], encoding: Encoding) -> u64 {
        count_chat(encoding, items)
    }

    fn text_len(&self) -> usize {
        self.content.len()
    }
}

/// A JSON request body (or any part of one).
///
/// - Every string value is counted, at any depth; object keys are not (they are structure, not
///   prompt text); numbers, booleans and `null` count zero.
/// - Not counted either, because they are not prompt text: the value of a `model` key, the value
///   of a `data` key (Anthropic base64 image/document sources) and any string starting with
///   `data:` (inline image URLs). Providers charge images by size, not by characters; pass
///   `tokens = ...` if your requests carry many.
/// - An object with a `messages` array (an OpenAI or Anthropic chat request) also gets
///   [`count_chat`]'s framing: 3 per message, 1 per message with a `name`, 3 for the reply
///   priming. Content given as an array of parts (`[{"type":"text","text":..}]`) is counted
///   through its strings like everything else.
///
/// So `{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}` estimates exactly
/// as `count_chat` of the same message. For approximations the total is scaled once.
impl EstimateTokens for Value {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        scale(encoding, raw_json(bpe(encoding), self, None))
    }

    fn text_len(&self) -> usize {
        match self {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(EstimateTokens::text_len).sum(),
            Value::Object(map) => map.values().map(EstimateTokens::text_len).sum(),
            _ => 0,
        }
    }
}

fn raw_json(bpe: &CoreBPE, value: &Value, key: Option<&str>) -> u64 {
    match value {
        Value::String(text) => {
            if matches!(key, Some("model" | "data")) || text.starts_with("data:") {
                0
            } else {
                raw_count(bpe, text)
            }
        }
        Value::Array(items) => items
            .iter()
            .fold(0, |sum, item| sum.saturating_add(raw_json(bpe, item, key))),
        Value::Object(map) => {
            let mut total = map.iter().fold(0u64, |sum, (k, v)| {
                sum.saturating_add(raw_json(bpe, v, Some(k)))
            });
            if let Some(Value::Array(messages)) = map.get("messages") {
                let names = messages.iter().filter(|m| m.get("name").is_some()).count() as u64;
                total = total
                    .saturating_add(TOKENS_PER_MESSAGE * messages.len() as u64)
                    .saturating_add(TOKENS_PER_NAME * names)
                    .saturating_add(REPLY_PRIMING);
            }
            total
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}
