//! Estimating a request's prompt tokens from its arguments: [`EstimateTokens`] and its impls,
//! and OpenAI's chat-format overhead ([`count_chat`]).

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;

use super::image::{base64_image_size, data_url_image_size, Detail, ImageRule};
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
    /// `#[rate_limited]` uses it to count very large prompts off the async executor, and
    /// OpenAI's character-based charge is estimated from it, so images and other data that
    /// are not counted as text are not in it.
    fn text_len(&self) -> usize {
        0
    }

    /// The part of [`EstimateTokens::estimate_tokens`] that is images, counted by the
    /// provider's formula rather than as text (0 if none).
    ///
    /// The character-based charge of OpenAI and Azure (see
    /// [`Provider::charged_prompt_estimate`](crate::config::Provider::charged_prompt_estimate))
    /// counts [`EstimateTokens::text_len`] and adds these, since an image is charged by its
    /// size, never by the characters of its base64 text.
    fn image_tokens(&self) -> u64 {
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

            fn image_tokens(&self) -> u64 {
                (**self).image_tokens()
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

    fn image_tokens(&self) -> u64 {
        self.as_ref().map_or(0, EstimateTokens::image_tokens)
    }
}

impl<T: EstimateTokens> EstimateTokens for [T] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }

    fn image_tokens(&self) -> u64 {
        self.iter()
            .fold(0, |sum, item| sum.saturating_add(item.image_tokens()))
    }
}

impl<T: EstimateTokens, const N: usize> EstimateTokens for [T; N] {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }

    fn image_tokens(&self) -> u64 {
        self.iter()
            .fold(0, |sum, item| sum.saturating_add(item.image_tokens()))
    }
}

impl<T: EstimateTokens> EstimateTokens for Vec<T> {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        T::estimate_tokens_of_slice(self, encoding)
    }

    fn text_len(&self) -> usize {
        self.iter().map(EstimateTokens::text_len).sum()
    }

    fn image_tokens(&self) -> u64 {
        self.iter()
            .fold(0, |sum, item| sum.saturating_add(item.image_tokens()))
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

            fn image_tokens(&self) -> u64 {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                0u64 $(.saturating_add($name.image_tokens()))+
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
/// - Not counted either, because they are not prompt text: the value of a `model` key and the
///   value of a `data` key (base64 document sources, say).
/// - **Images count as the provider counts them, by their size, never by the characters of
///   their base64 text**: an OpenAI part (`{"type": "image_url", "image_url": {"url": ..,
///   "detail": ..}}`, or the Responses API's `input_image`), an Anthropic one (`{"type":
///   "image", "source": {"type": "base64", "data": ..}}`), a Gemini `inline_data` with an
///   `image/*` MIME type, and any other `data:image/...` URL. The width and height are read
///   from the header of the inline data (PNG, JPEG, GIF, WebP); the tokens follow the
///   provider's published formula: OpenAI's 512 px tiles (`85 + 170 × tiles`, 85 at `detail:
///   low`, 2,833 + 5,667 × tiles on gpt-4o-mini) or 32 px patches (gpt-4.1-mini and -nano,
///   o4-mini, gpt-5-mini and -nano), chosen by the body's `model` (tiles without one);
///   Anthropic's `width × height / 750`, long edge scaled to 1,568 px, at most 1,600; Gemini's
///   258 per 768 px tile. An image whose size is not known (a URL, an unreadable header) costs
///   the most its formula gives (OpenAI: 8 tiles or 1,536 patches; Anthropic: 1,600; Gemini: 4
///   tiles). These tokens are not scaled by an approximation's factor: they are the
///   provider's count. Sources:
///   <https://platform.openai.com/docs/guides/images-vision#calculating-costs>,
///   <https://docs.anthropic.com/en/docs/build-with-claude/vision#calculate-image-costs>,
///   <https://ai.google.dev/gemini-api/docs/tokens#multimodal-tokens> (2026-11).
/// - An object with a `messages` array (an OpenAI or Anthropic chat request) also gets
///   [`count_chat`]'s framing: 3 per message, 1 per message with a `name`, 3 for the reply
///   priming. Content given as an array of parts (`[{"type":"text","text":..}]`) is counted
///   through its strings like everything else.
///
/// So `{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}` estimates exactly
/// as `count_chat` of the same message. For approximations the text total is scaled once.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{tokens::Encoding, EstimateTokens};
/// use serde_json::json;
///
/// // A 1×1 PNG, at gpt-4o's high detail: one tile, 85 + 170 tokens.
/// let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// let part = json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}});
/// assert_eq!(part.estimate_tokens(Encoding::O200kBase), 255);
/// assert_eq!(part.image_tokens(), 255);
/// assert_eq!(part.text_len(), 0);
/// ```
impl EstimateTokens for Value {
    fn estimate_tokens(&self, encoding: Encoding) -> u64 {
        let bpe = bpe(encoding);
        let (mut text, mut images) = (0u64, 0u64);
        walk_json(self, None, None, &mut |part| match part {
            JsonPart::Text(t) => text = text.saturating_add(raw_count(bpe, t)),
            JsonPart::Framing(tokens) => text = text.saturating_add(tokens),
            JsonPart::Image(image) => images = images.saturating_add(image.tokens()),
        });
        scale(encoding, text).saturating_add(images)
    }

    fn text_len(&self) -> usize {
        let mut len = 0usize;
        walk_json(self, None, None, &mut |part| {
            if let JsonPart::Text(text) = part {
                len = len.saturating_add(text.len());
            }
        });
        len
    }

    fn image_tokens(&self) -> u64 {
        let mut tokens = 0u64;
        walk_json(self, None, None, &mut |part| {
            if let JsonPart::Image(image) = part {
                tokens = tokens.saturating_add(image.tokens());
            }
        });
        tokens
    }
}

/// What the estimate sees of a JSON body, piece by piece.
enum JsonPart<'a> {
    /// Prompt text, to tokenize.
    Text(&'a str),
    /// Chat framing tokens, in the raw (unscaled) count.
    Framing(u64),
    /// An image, counted by its provider's formula.
    Image(JsonImage<'a>),
}

/// An image part of a JSON body.
struct JsonImage<'a> {
    rule: ImageRule,
    source: ImageSource<'a>,
    detail: Detail,
}

/// Where an image's bytes are, as far as its size can be read.
enum ImageSource<'a> {
    /// Bare base64 (Anthropic `source.data`, Gemini `inline_data.data`).
    Base64(&'a str),
    /// A `data:` URL.
    DataUrl(&'a str),
    /// A URL or file reference: the size is not known.
    Elsewhere,
}

impl JsonImage<'_> {
    fn tokens(&self) -> u64 {
        let size = match self.source {
            ImageSource::Base64(data) => base64_image_size(data),
            ImageSource::DataUrl(url) => data_url_image_size(url),
            ImageSource::Elsewhere => None,
        };
        self.rule.tokens(size, self.detail)
    }
}

/// Visits the text, framing and images of `value`; `key` is the key it is the value of, and
/// `model` the nearest enclosing `model` (it picks OpenAI's image formula).
fn walk_json<'a>(
    value: &'a Value,
    key: Option<&str>,
    model: Option<&'a str>,
    visit: &mut dyn FnMut(JsonPart<'a>),
) {
    match value {
        Value::String(text) => {
            if matches!(key, Some("model" | "data")) {
            } else if let Some(rest) = text.strip_prefix("data:") {
                if rest.starts_with("image/") {
                    visit(JsonPart::Image(JsonImage {
                        rule: ImageRule::for_openai_model(model),
                        source: ImageSource::DataUrl(text),
                        detail: Detail::High,
                    }));
                }
            } else {
                visit(JsonPart::Text(text));
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_json(item, key, model, visit);
            }
        }
        Value::Object(map) => {
            let model = map.get("model").and_then(Value::as_str).or(model);
            if let Some(image) = image_part(map, model) {
                visit(JsonPart::Image(image));
                return;
            }
            for (k, v) in map {
                walk_json(v, Some(k), model, visit);
            }
            if let Some(Value::Array(messages)) = map.get("messages") {
                let names = messages.iter().filter(|m| m.get("name").is_some()).count() as u64;
                visit(JsonPart::Framing(
                    (TOKENS_PER_MESSAGE * messages.len() as u64)
                        .saturating_add(TOKENS_PER_NAME * names)
                        .saturating_add(REPLY_PRIMING),
                ));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The image `map` is, if it is an image part of an OpenAI, Anthropic or Gemini body.
fn image_part<'a>(
    map: &'a serde_json::Map<String, Value>,
    model: Option<&'a str>,
) -> Option<JsonImage<'a>> {
    let str_of = |key: &str| map.get(key).and_then(Value::as_str);
    match str_of("type") {
        // OpenAI: Chat Completions' `image_url` object, the Responses API's `input_image`.
        Some("image_url" | "input_image") => {
            let (url, detail) = match map.get("image_url") {
                Some(Value::String(url)) => (Some(url.as_str()), str_of("detail")),
                Some(Value::Object(inner)) => (
                    inner.get("url").and_then(Value::as_str),
                    inner
                        .get("detail")
                        .and_then(Value::as_str)
                        .or_else(|| str_of("detail")),
                ),
                _ => (None, str_of("detail")),
            };
            let source = match url {
                Some(url) if url.starts_with("data:") => ImageSource::DataUrl(url),
                _ => ImageSource::Elsewhere,
            };
            return Some(JsonImage {
                rule: ImageRule::for_openai_model(model),
                source,
                detail: Detail::parse(detail),
            });
        }
        // Anthropic: `{"type": "image", "source": {"type": "base64" | "url" | "file", ..}}`.
        Some("image") => {
            if let Some(Value::Object(source)) = map.get("source") {
                let data = source.get("data").and_then(Value::as_str);
                let source = match (source.get("type").and_then(Value::as_str), data) {
                    (Some("base64"), Some(data)) => ImageSource::Base64(data),
                    _ => ImageSource::Elsewhere,
                };
                return Some(JsonImage {
                    rule: ImageRule::Anthropic,
                    source,
                    detail: Detail::High,
                });
            }
        }
        _ => {}
    }
    // Gemini: the object inside `inline_data` (`{"mime_type": "image/png", "data": ..}`) or
    // `file_data` (`{"mime_type": .., "file_uri": ..}`), in snake or camel case.
    let mime = str_of("mime_type").or_else(|| str_of("mimeType"))?;
    if !mime.starts_with("image/") {
        return None;
    }
    let source = if let Some(data) = str_of("data") {
        ImageSource::Base64(data)
    } else if map.contains_key("file_uri") || map.contains_key("fileUri") {
        ImageSource::Elsewhere
    } else {
        return None;
    };
    Some(JsonImage {
        rule: ImageRule::Gemini,
        source,
        detail: Detail::High,
    })
}
