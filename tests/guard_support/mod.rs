//! What the breaker and budget tests share: reading the refusals a guard answers with.
#![allow(dead_code)] // each test file uses the part it needs

use std::time::Duration;

use ratelimited::spend::Amount;
use ratelimited::{CallError, Error, Usage};

/// The budget, what it has left and what the call asked for, from a `BudgetExhausted` refusal.
pub fn exhausted(result: Result<Usage, CallError>) -> (String, Amount, Amount) {
    match result {
        Err(CallError::Limiter(Error::BudgetExhausted {
            budget,
            remaining,
            requested,
        })) => (budget, remaining, requested),
        other => panic!("expected BudgetExhausted, got {other:?}"),
    }
}

/// When the breaker of `gpt-4o-mini` says a probe may go, from a `CircuitOpen` refusal.
pub fn circuit_open(result: Result<Usage, CallError>) -> Option<Duration> {
    match result {
        Err(CallError::Limiter(Error::CircuitOpen { family, retry_in })) => {
            assert_eq!(family, "openai/gpt-4o-mini");
            retry_in
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
}
