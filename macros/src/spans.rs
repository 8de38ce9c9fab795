//! Span helpers: where the compiler points when generated code fails to type-check.
//!
//! Generated calls are written over the user's own tokens so that an unmet bound underlines the
//! attribute argument or the type that caused it, not the whole attribute.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};

/// `tokens` with every span moved to `span`'s location, keeping its hygiene.
pub(crate) fn located_at(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut moved = Group::new(group.delimiter(), located_at(group.stream(), span));
                moved.set_span(group.span().located_at(span));
                TokenTree::Group(moved)
            }
            mut other => {
                other.set_span(other.span().located_at(span));
                other
            }
        })
        .collect()
}

/// The first and last token spans of `tokens`: on stable Rust a span cannot be joined, but an
/// expression whose tokens run from one to the other is reported across the whole range.
pub(crate) fn span_range(tokens: &impl ToTokens) -> (Span, Span) {
    let mut spans = tokens
        .to_token_stream()
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => (group.span_open(), group.span_close()),
            other => (other.span(), other.span()),
        });
    let (first, mut last) = spans
        .next()
        .map_or((Span::call_site(), Span::call_site()), |(open, close)| {
            (open, close)
        });
    for (_, close) in spans {
        last = close;
    }
    (first, last)
}

/// `function(args)` written over the user's tokens from `first` to `last`, so that an unmet
/// bound of `function` underlines exactly those tokens. The function's path takes the spans of
/// the user's tokens (resolution is the same: it is absolute); the arguments keep their own.
/// rustc joins the span of an expression only when its ends share a syntax context, and falls
/// back to the whole attribute otherwise.
pub(crate) fn call_across(
    function: TokenStream,
    args: TokenStream,
    (first, last): (Span, Span),
) -> TokenStream {
    let function: TokenStream = function
        .into_iter()
        .map(|mut token| {
            token.set_span(first);
            token
        })
        .collect();
    let mut args = Group::new(Delimiter::Parenthesis, args);
    args.set_span(last);
    quote!(#function #args)
}
