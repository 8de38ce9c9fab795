#![cfg(feature = "mock-server")]
