#![cfg(feature = "async-openai")]
//! placeholder
