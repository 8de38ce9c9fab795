//! The vocabulary every other layer speaks: the dimensions a limit counts, amounts of tokens and
//! money, quotas and the costs reserved against them, and the one error type.

// Bottom up; rustfmt would sort adjacent `mod` lines.
pub mod money;

pub mod cost;

pub mod error;

pub mod quota;

pub mod tenant;
