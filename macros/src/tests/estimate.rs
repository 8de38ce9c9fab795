//! The reservation (`estimate.rs`), seen in the whole expansion.

use quote::quote;

use crate::test_support::*;

#[test]
fn self_is_not_estimated() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f(&self, prompt: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("Arg (& prompt)"), "{out}");
    assert!(!out.contains("Arg (& self)"), "{out}");
}

#[test]
fn explicit_tokens_replace_the_estimate() {
    let out = expand_to_string(
        quote!(model = "m", tokens = prompt.len() / 4),
        quote!(
            async fn f(prompt: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(
            "set_input_tokens (:: ratelimited :: __private :: token_count (prompt . len () / 4))"
        ),
        "{out}"
    );
    assert!(!out.contains("__rl_estimate"), "{out}");
    assert!(out.contains("__rl_budget"), "{out}");
}

#[test]
fn output_budget_from_arguments_then_the_attribute() {
    let out = expand_to_string(
        quote!(model = "m", max_tokens = 100),
        quote!(
            async fn f(req: &Req) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    let observe = out.find("observe_budget").expect("observe_budget");
    let set = out.find("set_max_tokens").expect("set_max_tokens");
    assert!(observe < set, "the attribute must win: {out}");

    let out = expand_to_string(
        quote!(model = "m", max_tokens = 100, n = 2),
        quote!(
            async fn f(req: &Req) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("observe_budget"), "{out}");
    assert!(
        out.contains("set_n (:: ratelimited :: __private :: choice_count (2))"),
        "{out}"
    );
}

#[test]
fn no_arguments_no_estimate() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("estimate"), "{out}");
    assert!(!out.contains("observe_budget"), "{out}");
}

#[test]
fn an_argument_that_is_the_model_is_not_prompt_text() {
    let out = expand_to_string(
        quote!(model = model.as_str(), tier = &*tier, provider = (provider)),
        quote!(
            async fn f(model: String, tier: &str, provider: &str, prompt: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("Arg (& prompt)) . __rl_estimate"), "{out}");
    for name in ["model", "tier", "provider"] {
        let estimated = format!("Arg (& {name})) . __rl_estimate");
        assert!(!out.contains(&estimated), "{name}: {out}");
    }
}

#[test]
fn an_argument_the_model_is_read_from_still_counts() {
    for model in [quote!(request.model), quote!(request.model())] {
        let out = expand_to_string(
            quote!(model = #model),
            quote!(
                async fn f(request: &Request) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("Arg (& request)) . __rl_estimate"), "{out}");
    }
}

#[test]
fn skipped_arguments_are_not_estimated_but_still_give_a_budget() {
    let out = expand_to_string(
        quote!(model = "m", skip(note)),
        quote!(
            async fn f(note: &str, prompt: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("Arg (& note)) . __rl_estimate"), "{out}");
    assert!(out.contains("Arg (& prompt)) . __rl_estimate"), "{out}");
    assert!(out.contains("Arg (& note)) . __rl_budget"), "{out}");
}

#[test]
fn skipping_every_argument_leaves_no_estimate() {
    let out = expand_to_string(
        quote!(model = model, skip(note)),
        quote!(
            async fn f(model: &str, note: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("__rl_estimate"), "{out}");
}
