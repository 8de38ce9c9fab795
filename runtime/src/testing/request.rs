//! What a client asks of the mock: [`MockRequest`] for in-process calls, and
//! [`RequestedWork`], the form every entry point (in-process or JSON) is reduced to before the
//! provider charges it.

use crate::model::output::{MaxOutput, OutputBudget};
use crate::model::tokens::{
    count_chat, count_tokens, encoding_for_model, ChatMessage, Encoding, EstimateTokens,
};

#[cfg(doc)]
use super::MockProvider;
#[cfg(doc)]
use crate::config::DEFAULT_MAX_TOKENS;

/// One request to [`MockProvider::chat`](crate::testing::MockProvider::chat).
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::testing::MockRequest;
/// let request = MockRequest::new("gpt-4o-mini", 1_000).max_tokens(200).n(2);
/// assert_eq!(request.charge(16), 1_000 + 2 * 200);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MockRequest {
    /// The model id; it only appears in responses and messages (one bucket pair serves all).
    pub model: String,
    /// The prompt's tokens.
    pub prompt_tokens: u64,
    /// The completion cap per choice; `None` uses the provider's default (the limiter's own
    /// [`DEFAULT_MAX_TOKENS`] unless [`MockProvider::default_max_tokens`] changed it).
    pub max_tokens: Option<u64>,
    /// Choices to generate (0 is read as 1).
    pub n: u32,
    /// The prompt's characters, when the request was built from its text: what a provider in
    /// [character-estimate mode](MockProvider::charge_prompt_by_characters) charges from.
    pub prompt_chars: Option<u64>,
    /// The prompt's leading part a provider with a [prompt cache](MockProvider::prompt_cache)
    /// can cache: a key standing for its text, and its tokens (part of `prompt_tokens`).
    pub cached_prefix: Option<(String, u64)>,
}

impl MockRequest {
    /// A request with a known prompt size, no `max_tokens` and `n = 1`.
    pub fn new(model: impl Into<String>, prompt_tokens: u64) -> Self {
        MockRequest {
            model: model.into(),
            prompt_tokens,
            max_tokens: None,
            n: 1,
            prompt_chars: None,
            cached_prefix: None,
        }
    }

    /// A request whose prompt is `text`, counted with [`count_tokens`] in the model's encoding.
    pub fn text(model: impl Into<String>, text: &str) -> Self {
        let model = model.into();
        let tokens = count_tokens(encoding_for_model(&model), text);
        MockRequest {
            prompt_chars: Some(text.chars().count() as u64),
            ..MockRequest::new(model, tokens)
        }
    }

    /// A chat request, counted with [`count_chat`] (message framing included) in the model's
    /// encoding.
    pub fn chat(model: impl Into<String>, messages: &[ChatMessage]) -> Self {
        let model = model.into();
        let tokens = count_chat(encoding_for_model(&model), messages);
        MockRequest {
            prompt_chars: Some(chat_chars(messages)),
            ..MockRequest::new(model, tokens)
        }
    }

    /// Sets the completion cap per choice.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u64) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Says the prompt opens with `tokens` tokens of a prefix named `key` (the same key stands
    /// for the same text): a provider with a [prompt cache](MockProvider::prompt_cache) caches
    /// it on the first admission and reads it from the cache on later ones. At most the whole
    /// prompt.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::testing::MockRequest;
    /// let request = MockRequest::new("claude-sonnet-4-5", 10_000).cached_prefix("manual", 9_000);
    /// assert_eq!(request.cached_prefix, Some(("manual".to_owned(), 9_000)));
    /// ```
    #[must_use]
    pub fn cached_prefix(mut self, key: impl Into<String>, tokens: u64) -> Self {
        self.cached_prefix = Some((key.into(), tokens.min(self.prompt_tokens)));
        self
    }

    /// Sets the number of choices.
    #[must_use]
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// What admission charges against the tokens bucket: `prompt + n × max_tokens`, with
    /// `default_max_tokens` when the request gives none.
    pub fn charge(&self, default_max_tokens: u64) -> u64 {
        chat_charge(
            self.prompt_tokens,
            self.max_tokens.unwrap_or(default_max_tokens),
            self.n,
        )
    }
}

/// The characters of a conversation's contents.
pub(crate) fn chat_chars(messages: &[ChatMessage]) -> u64 {
    messages
        .iter()
        .map(|m| m.content.chars().count() as u64)
        .sum()
}

/// `prompt + n × max_tokens`, with `n = 0` read as 1.
fn chat_charge(prompt_tokens: u64, max_tokens: u64, n: u32) -> u64 {
    prompt_tokens.saturating_add(u64::from(n.max(1)).saturating_mul(max_tokens))
}

/// The request's prompt tokens, whatever the encoding (they are already counted).
impl EstimateTokens for MockRequest {
    fn estimate_tokens(&self, _encoding: Encoding) -> u64 {
        self.prompt_tokens
    }
}

/// `max_tokens` and `n`, so `#[rate_limited]` reserves what the mock will charge.
impl OutputBudget for MockRequest {
    fn output_budget(&self) -> MaxOutput {
        MaxOutput {
            max_tokens: self.max_tokens,
            n: Some(self.n.max(1)),
        }
    }
}

/// One call reduced to what the provider charges and answers.
#[derive(Clone, Debug)]
pub(crate) enum RequestedWork {
    /// A chat completion.
    Chat {
        prompt_tokens: u64,
        /// The prompt's characters, when known.
        prompt_chars: Option<u64>,
        /// `None`: the provider's default cap.
        max_tokens: Option<u64>,
        /// At least 1.
        n: u32,
        /// The cacheable leading part: its key and tokens.
        prefix: Option<(String, u64)>,
    },
    /// An embeddings call.
    Embeddings {
        /// Tokens of each input.
        inputs: Vec<u64>,
        dimensions: usize,
    },
}

impl RequestedWork {
    /// What admission charges against the tokens bucket: `prompt + n × max_tokens` for a chat
    /// (with `default_max_tokens` when it gives no cap), the input tokens for embeddings.
    /// `by_characters`: a chat prompt whose characters are known is charged
    /// `ceil(characters / 4)` instead of its tokens.
    pub(crate) fn charge(&self, default_max_tokens: u64, by_characters: bool) -> u64 {
        match self {
            RequestedWork::Chat {
                prompt_tokens,
                prompt_chars,
                max_tokens,
                n,
                ..
            } => {
                let prompt = match prompt_chars {
                    Some(chars) if by_characters => {
                        chars.div_ceil(crate::config::CHARACTERS_PER_CHARGED_TOKEN)
                    }
                    _ => *prompt_tokens,
                };
                chat_charge(prompt, max_tokens.unwrap_or(default_max_tokens), *n)
            }
            RequestedWork::Embeddings { inputs, .. } => total_tokens(inputs),
        }
    }
}

impl From<&MockRequest> for RequestedWork {
    fn from(request: &MockRequest) -> Self {
        RequestedWork::Chat {
            prompt_tokens: request.prompt_tokens,
            prompt_chars: request.prompt_chars,
            max_tokens: request.max_tokens,
            n: request.n.max(1),
            prefix: request.cached_prefix.clone(),
        }
    }
}

impl RequestedWork {
    /// The cacheable prefix, if the request has one.
    pub(crate) fn prefix(&self) -> Option<&(String, u64)> {
        match self {
            RequestedWork::Chat { prefix, .. } => prefix.as_ref(),
            RequestedWork::Embeddings { .. } => None,
        }
    }
}

/// The sum of the inputs' tokens, saturating.
pub(crate) fn total_tokens(inputs: &[u64]) -> u64 {
    inputs.iter().fold(0u64, |sum, t| sum.saturating_add(*t))
}
