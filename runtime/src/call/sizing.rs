//! What a call reserves, gathered before its first attempt: the prompt estimate (tokens, and
//! the text and images a character-based charge counts) and the output budget. One for
//! [`Call`](super::Call) and [`PoolCall`](super::pool::PoolCall) alike; a pool prices it on
//! each deployment it may go to.

use crate::config::ModelProfile;
use crate::family::feedback::FamilyFeedback;
use crate::model::output::MaxOutput;
use crate::units::cost::Cost;
use crate::units::quota::Charged;

/// A call's estimate and output budget. Copied out of the call so a pool's routing can price
/// it from any thread.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sizing {
    input_tokens: u64,
    /// Bytes of prompt text, for the character-based estimate some servers charge.
    text_bytes: usize,
    /// Tokens of the estimate that are images, which a character-based estimate adds.
    image_tokens: u64,
    max_tokens: Option<u64>,
    n: Option<u32>,
}

impl Sizing {
    /// Adds `tokens` of prompt estimate over `text_len` bytes of text.
    pub(crate) fn add_estimate(&mut self, tokens: u64, text_len: usize) {
        self.input_tokens = self.input_tokens.saturating_add(tokens);
        self.text_bytes = self.text_bytes.saturating_add(text_len);
    }

    pub(crate) fn add_images(&mut self, tokens: u64) {
        self.image_tokens = self.image_tokens.saturating_add(tokens);
    }

    pub(crate) fn set_input_tokens(&mut self, tokens: u64) {
        self.input_tokens = tokens;
    }

    /// Takes `max_tokens` and `n` from an argument that knows them (the first one wins).
    pub(crate) fn observe_budget(&mut self, budget: Option<MaxOutput>) {
        if let Some(budget) = budget {
            self.max_tokens = self.max_tokens.or(budget.max_tokens);
            self.n = self.n.or(budget.n);
        }
    }

    pub(crate) fn set_max_tokens(&mut self, max_tokens: u64) {
        self.max_tokens = Some(max_tokens);
    }

    pub(crate) fn set_n(&mut self, n: u32) {
        self.n = Some(n);
    }

    /// What each attempt reserves on the family of `profile`: the larger of the token
    /// estimate and the character-based one its provider charges, raised by what its server
    /// has been seen to charge beyond it (`feedback`), plus `n × max_tokens` (none for a
    /// server that counts from the answer: its usage is the debit).
    pub(crate) fn cost(self, profile: &ModelProfile, feedback: &FamilyFeedback) -> Cost {
        let max_tokens = self.max_tokens.unwrap_or(profile.default_max_tokens);
        let n = u64::from(self.n.unwrap_or(1).max(1));
        let charged = self
            .charged_prompt(profile)
            .map_or(self.input_tokens, |by_characters| {
                self.input_tokens.max(by_characters)
            });
        let input = feedback.corrected_input(charged);
        let output = match profile.quota.charged {
            Charged::AfterResponse => 0,
            _ => n.saturating_mul(max_tokens),
        };
        Cost::request(input, output)
    }

    /// The prompt a provider that estimates from characters charges on arrival, if it does:
    /// its estimate of the text, plus the images by their formula.
    pub(crate) fn charged_prompt(self, profile: &ModelProfile) -> Option<u64> {
        profile
            .family
            .provider
            .charged_prompt_estimate(self.text_bytes)
            .map(|by_characters| by_characters.saturating_add(self.image_tokens))
    }
}
