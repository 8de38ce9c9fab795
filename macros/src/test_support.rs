//! Helpers for the tests that run the whole attribute (`tests/`): its output as a string, as a
//! function, or as the `compile_error!` messages it holds.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

use crate::entry::rate_limited;

/// The expansion of `item` under `#[rate_limited(args)]`, as a string.
pub(crate) fn expand_to_string(args: TokenStream, item: TokenStream) -> String {
    rate_limited(args, item).to_string()
}

/// The expansion, which must be a well-formed function.
pub(crate) fn expand_fn(args: TokenStream, item: TokenStream) -> ItemFn {
    let tokens = rate_limited(args, item);
    match syn::parse2::<ItemFn>(tokens.clone()) {
        Ok(func) => func,
        Err(error) => panic!("not a function ({error}):\n{tokens}"),
    }
}

/// The `compile_error!` messages in an expansion, in order.
pub(crate) fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(rate_limited(args, item)).expect("items");
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.segments.last().unwrap().ident == "compile_error" => {
                let message: syn::LitStr = m.mac.parse_body().expect("a message");
                Some(message.value())
            }
            _ => None,
        })
        .collect()
}

pub(crate) fn signature(func: &ItemFn) -> String {
    func.sig.to_token_stream().to_string()
}
