//! What a request may produce: its output budget (`max_tokens` × `n`), as an argument type
//! reports it.

/// What an argument may say about the output a request can produce (what [`OutputBudget`]
/// reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxOutput {
    /// `max_tokens` / `max_completion_tokens` / `max_output_tokens`.
    pub max_tokens: Option<u64>,
    /// How many choices (`n`).
    pub n: Option<u32>,
}

/// A request type that knows its output budget, so the reservation covers
/// `n × max_tokens` without the attribute repeating it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say how many output tokens it may produce",
    note = "implement `ratelimited::OutputBudget` for it, or pass `max_tokens = ...` and `n = ...` \
            to `#[rate_limited]`"
)]
pub trait OutputBudget {
    /// The request's output budget, if it sets one.
    fn output_budget(&self) -> MaxOutput;
}

impl<T: OutputBudget + ?Sized> OutputBudget for &T {
    fn output_budget(&self) -> MaxOutput {
        (**self).output_budget()
    }
}

impl<T: OutputBudget + ?Sized> OutputBudget for &mut T {
    fn output_budget(&self) -> MaxOutput {
        (**self).output_budget()
    }
}

impl<T: OutputBudget + ?Sized> OutputBudget for Box<T> {
    fn output_budget(&self) -> MaxOutput {
        (**self).output_budget()
    }
}

impl OutputBudget for serde_json::Value {
    /// Reads an OpenAI-style request body: `max_completion_tokens`, `max_tokens` or
    /// `max_output_tokens` (the first present), and `n`.
    fn output_budget(&self) -> MaxOutput {
        let max_tokens = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
            .iter()
            .find_map(|key| self.get(key).and_then(serde_json::Value::as_u64));
        let n = self
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        MaxOutput { max_tokens, n }
    }
}
