//! Ready-made trait impls for HTTP and LLM client crates, each behind a cargo feature.
//!
//! | feature | module | what you get |
//! |---|---|---|
//! | `reqwest` | [`reqwest`] | [`Classify`](crate::Classify) for `reqwest::Error`; [`http_error`](self::reqwest::http_error) / [`error_for_status`](self::reqwest::error_for_status) to turn a failed `reqwest::Response` into a classifiable [`HttpError`](crate::answers::http::HttpError); [`rate_limit_headers`](self::reqwest::rate_limit_headers) (with [`CallError`](crate::CallError), the ready error type, holding and classifying `reqwest::Error`) |
//! | `reqwest-middleware` | [`reqwest_middleware`] | [`RateLimit`](self::reqwest_middleware::RateLimit), a `reqwest_middleware::Middleware` that limits the LLM requests a `ClientWithMiddleware` sends: recognised from their path and JSON body, reserved, retried, settled from the answer's usage (streamed answers when they end); implies `reqwest` |
//! | `tower` | [`tower`] | [`RateLimitLayer`](self::tower::RateLimitLayer), the same as a `tower::Layer` over `http::Request` services (hyper clients, axum/hyper gateways) |
//! | `async-openai` | [`async_openai`] | [`EstimateTokens`](crate::EstimateTokens) and [`OutputBudget`](crate::OutputBudget) for its chat and embedding requests, [`ReportUsage`](crate::ReportUsage) for their responses, [`Classify`](crate::Classify) for `OpenAIError`; [`CallError`](crate::CallError) holds and classifies `OpenAIError`; implies `reqwest` |
//!
//! Neither feature enables a TLS backend: pick one on your own `reqwest` or `async-openai`
//! dependency (for example `rustls`, or `rustls-no-provider` plus a crypto provider you
//! install); cargo unifies the features, so this crate uses the same build of the client.
//!
//! The client types are the ones of the versions this crate was built against: `reqwest` 0.13
//! and `async-openai` 0.43. A different major version in your tree is a different crate, and the
//! impls won't apply to it.

#[cfg(feature = "async-openai")]
pub mod async_openai;

#[cfg(any(feature = "reqwest", feature = "tower"))]
mod headers;

#[cfg(feature = "reqwest")]
pub mod reqwest;

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub mod llm;

// Its body type is public through `tower` only.
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
#[cfg_attr(not(feature = "tower"), allow(unreachable_pub))]
mod body;

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
mod exchange;

#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;

#[cfg(feature = "tower")]
pub mod tower;
