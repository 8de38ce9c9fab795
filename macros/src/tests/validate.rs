//! The checks of the item (`validate.rs`) and how their errors come out of the attribute.

use quote::quote;

use crate::entry::rate_limited;
use crate::test_support::*;

#[test]
fn errors_keep_the_item() {
    let item = quote!(
        fn f(p: &str) -> Result<(), E> {
            Ok(())
        }
    );
    let out = rate_limited(quote!(model = "m"), item.clone()).to_string();
    assert!(out.starts_with(&item.to_string()), "{out}");
    assert_eq!(
        errors(quote!(model = "m"), item),
        ["`#[rate_limited]` requires an `async fn`: add `async` before `fn`"]
    );
}

#[test]
fn argument_and_item_errors_are_reported_together() {
    assert_eq!(
        errors(
            quote!(colour = 1),
            quote!(
                fn f() {}
            )
        ),
        [
            "unknown argument `colour`, expected one of `model`, `pool`, `deployment`, `tier`, `provider`, \
             `tokens`, `max_tokens`, `n`, `skip`, `retries`, `stream`, `priority`, `tenant`, `crate`",
            "missing `model` argument: write `#[rate_limited(model = \"gpt-4o-mini\")]`, \
             or `model = <expression>` to take it from an argument",
            "`#[rate_limited]` requires an `async fn`: add `async` before `fn`",
            "`#[rate_limited]` functions must return a `Result`: add `-> Result<T, E>` \
             where `E: From<ratelimited::Error>`",
        ]
    );
}

#[test]
fn impl_trait_in_the_return_type() {
    assert_eq!(
        errors(
            quote!(model = "m"),
            quote!(
                async fn f() -> Result<impl Display, E> {
                    Ok(1)
                }
            )
        ),
        [
            "`impl Trait` is not supported in the return type of a `#[rate_limited]` \
          function: name the type, or box it as `Box<dyn Trait>`"
        ]
    );
}

#[test]
fn items_that_are_not_functions() {
    assert_eq!(
        errors(
            quote!(model = "m"),
            quote!(
                struct S;
            )
        ),
        ["`#[rate_limited]` can only be applied to an `async fn`"]
    );
    assert_eq!(
        errors(
            quote!(model = "m"),
            quote!(
                async fn f(&self) -> Result<(), E>;
            )
        ),
        [
            "`#[rate_limited]` needs the function's body: put it on the method in the `impl` \
          block, or give this trait method a default body"
        ]
    );
}

#[test]
fn skip_names_must_be_arguments() {
    assert_eq!(
        errors(
            quote!(model = "m", skip(promt, prompt)),
            quote!(
                async fn summarize(&self, client: &C, prompt: &str) -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        [
            "`skip` names `promt`, which is not an argument: the arguments of `summarize` are \
          `client`, `prompt`"
        ]
    );
    assert_eq!(
        errors(
            quote!(model = "m", skip(note)),
            quote!(
                async fn f((a, b): (A, B)) -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        ["`skip` names `note`, which is not an argument: `f` has no named arguments"]
    );
}

#[test]
fn a_return_type_that_is_clearly_not_a_result() {
    let error = |ret: proc_macro2::TokenStream| {
        errors(
            quote!(model = "m"),
            quote!(
                async fn f() -> #ret {
                    body()
                }
            ),
        )
    };
    assert_eq!(
        error(quote!(String)),
        [
            "`#[rate_limited]` functions must return a `Result`, not `String`: return \
          `Result<String, E>` where `E: From<ratelimited::Error>`"
        ]
    );
    assert_eq!(
        error(quote!(std::vec::Vec<&'static str>)),
        ["`#[rate_limited]` functions must return a `Result`, not `std::vec::Vec<&'static str>`: \
          return `Result<std::vec::Vec<&'static str>, E>` where `E: From<ratelimited::Error>`"]
    );
    for ret in [
        quote!(()),
        quote!((u32, u32)),
        quote!(&str),
        quote!([u8; 4]),
        quote!(bool),
    ] {
        assert_eq!(error(ret.clone()).len(), 1, "{ret}");
    }
}

#[test]
fn a_return_type_that_may_be_an_alias_of_a_result_is_left_to_the_type_system() {
    for ret in [
        quote!(io::Result<String>),
        quote!(anyhow::Result<Value>),
        quote!(MyResult<Value>),
        quote!(Answer),
        quote!(serde_json::Value),
        quote!(my::String),
    ] {
        let item = quote!(
            async fn f() -> #ret {
                body()
            }
        );
        assert!(errors(quote!(model = "m"), item).is_empty(), "{ret}");
    }
}
