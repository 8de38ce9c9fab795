//! What the integration tests share: the examples' API error type (one definition for both).

#[path = "../../examples/common/api_error.rs"]
mod api_error;

pub use api_error::ApiError;
