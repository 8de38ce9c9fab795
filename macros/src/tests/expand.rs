//! Code generation (`expand.rs`): what the generated function keeps and what it passes on.

use quote::{quote, ToTokens};

use crate::test_support::*;

#[test]
fn keeps_the_signature_and_attributes() {
    let func = expand_fn(
        quote!(model = "gpt-4o-mini"),
        quote! {
            /// Docs.
            #[inline]
            pub(crate) async fn f<'a, T: Clone>(x: &'a str, t: T) -> Result<&'a str, E>
            where
                T: Send,
            {
                #![allow(unused)]
                Ok(x)
            }
        },
    );
    assert_eq!(
        signature(&func),
        quote!(async fn f<'a, T: Clone>(x: &'a str, t: T) -> Result<&'a str, E> where T: Send,)
            .to_string()
    );
    assert_eq!(func.vis.to_token_stream().to_string(), "pub (crate)");
    let attrs: Vec<_> = func
        .attrs
        .iter()
        .map(|a| a.to_token_stream().to_string())
        .collect();
    assert_eq!(
        attrs,
        ["# [doc = r\" Docs.\"]", "# [inline]", "# [allow (unused)]"]
    );
}

#[test]
fn passes_the_arguments_to_call_new() {
    let out = expand_to_string(
        quote!(
            model = req.model,
            tier = "tier-2",
            provider = "openai",
            retries = 4
        ),
        quote!(
            async fn f(req: &Req) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(
            ":: ratelimited :: __private :: Call :: new (:: ratelimited :: __private :: \
             model_name (& req . model) , :: core :: option \
             :: Option :: Some (\"openai\") , :: core :: option :: Option :: Some (\"tier-2\") \
             , :: core :: option :: Option :: Some (4u32))"
        ),
        "{out}"
    );
}

#[test]
fn complex_model_expressions_are_parenthesized() {
    let out = expand_to_string(
        quote!(model = if big { "gpt-4o" } else { "gpt-4o-mini" }),
        quote!(
            async fn f(big: bool) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("model_name (& (if big"), "{out}");
}

#[test]
fn crate_path_replaces_the_default() {
    let out = expand_to_string(
        quote!(model = "m", crate = "my::facade"),
        quote!(
            async fn f(p: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains("my :: facade :: __private :: Call :: new"),
        "{out}"
    );
    assert!(!out.contains(":: ratelimited"), "{out}");
}
