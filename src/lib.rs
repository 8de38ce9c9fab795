pub use ratelimited_runtime::*;
