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
    assert!(!out.contains("__rl_prompt"), "{out}");
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
    assert!(out.contains("Arg (& prompt)) . __rl_prompt"), "{out}");
    for name in ["model", "tier", "provider"] {
        let estimated = format!("Arg (& {name})) . __rl_prompt");
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
        assert!(out.contains("Arg (& request)) . __rl_prompt"), "{out}");
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
    assert!(!out.contains("Arg (& note)) . __rl_prompt"), "{out}");
    assert!(out.contains("Arg (& prompt)) . __rl_prompt"), "{out}");
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
    assert!(!out.contains("__rl_prompt"), "{out}");
}

#[test]
fn every_prompt_argument_is_read_through_the_ladder_with_its_name() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn ask(client: &Client, prompt: impl AsRef<str>) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(
            "static __RL_SITE : :: ratelimited :: __private :: Site = :: ratelimited :: \
             __private :: Site :: new (:: core :: concat ! (:: core :: module_path ! () , \
             \"::\" , \"ask\") ,) ;"
        ),
        "{out}"
    );
    assert!(out.contains("name : \"client\""), "{out}");
    assert!(out.contains("name : \"prompt\""), "{out}");
    assert!(out.contains("Arg (& prompt)) . __rl_prompt ()"), "{out}");
    assert!(out.contains("ViaText as _"), "{out}");
}

#[test]
fn whether_a_declared_type_speaks_of_text() {
    let text_of = |item: proc_macro2::TokenStream| {
        let out = expand_to_string(quote!(model = "m"), item);
        let start = out.find("names_text :").expect("an estimated argument") + 13;
        out[start..].split_whitespace().next().unwrap().to_owned()
    };
    let speaks = [
        quote!(
            async fn f(p: impl Into<String>) -> Result<(), E> {
                Ok(())
            }
        ),
        quote!(
            async fn f<'a, S>(p: S) -> Result<(), E>
            where
                S: Into<Cow<'a, str>>,
            {
                Ok(())
            }
        ),
        quote!(
            async fn f<T: Display>(p: &[T]) -> Result<(), E> {
                Ok(())
            }
        ),
        quote!(
            async fn f(p: &HashMap<String, u32>) -> Result<(), E> {
                Ok(())
            }
        ),
    ];
    for item in speaks {
        assert_eq!(text_of(item.clone()), "true", "{item}");
    }
    let silent = [
        quote!(
            async fn f(p: &Client) -> Result<(), E> {
                Ok(())
            }
        ),
        quote!(
            async fn f<T: Clone>(p: T) -> Result<(), E> {
                Ok(())
            }
        ),
        quote!(
            async fn f<S: Into<String>, T>(p: T) -> Result<(), E> {
                Ok(())
            }
        ),
    ];
    for item in silent {
        assert_eq!(text_of(item.clone()), "false", "{item}");
    }
}

#[test]
fn a_pattern_argument_is_named_by_its_pattern() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f(Request { prompt, .. }: Request) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("name : \"Request { prompt , .. }\""), "{out}");
}
