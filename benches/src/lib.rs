//! Benchmarks only: see `benches/attribute.rs`.
