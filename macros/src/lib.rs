//! The `#[rate_limited]` attribute of the [`ratelimited`](https://docs.rs/ratelimited) crate.

mod attr;
mod expand;

/// Placeholder docs.
#[proc_macro_attribute]
pub fn rate_limited(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::rate_limited(args.into(), item.into()).into()
}
