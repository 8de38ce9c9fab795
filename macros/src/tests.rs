//! Unit tests that run the whole attribute (`entry::rate_limited`) and read its output, one file
//! per module whose behaviour they pin down. Tests of one module's own functions stay in that
//! module.

mod args;
mod estimate;
mod expand;
mod pool;
mod validate;
