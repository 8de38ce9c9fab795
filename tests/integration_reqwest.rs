#![cfg(feature = "reqwest")]
//! placeholder
