//! What is known of providers and models before any call: how prompts turn into tokens, which
//! provider and limit family a model belongs to, and the dated tier and price tables.

// Bottom up; rustfmt would sort adjacent `mod` lines.
pub mod output;

pub mod tokens;

pub mod provider;

pub mod limit_family;

pub mod tiers;

pub mod prices;
