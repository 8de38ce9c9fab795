//! The arguments each attempt binds (`args.rs`), seen in the whole expansion.

use quote::{quote, ToTokens};

use crate::test_support::*;

#[test]
fn owned_arguments_are_cloned_per_attempt() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f(req: Req, text: &str, log: &mut Log) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("require_clone (& req)"), "{out}");
    assert!(
        out.contains("= :: core :: clone :: Clone :: clone (& req) ;"),
        "{out}"
    );
    assert!(out.contains("= & mut * log ;"), "{out}");
    assert!(!out.contains("require_clone (& text)"), "{out}");
    assert!(!out.contains("require_clone (& log)"), "{out}");
    assert!(out.contains("loop { let __rl_attempt"), "{out}");
}

#[test]
fn retries_zero_neither_loops_nor_clones() {
    let out = expand_to_string(
        quote!(model = "m", retries = 0),
        quote!(
            async fn f(mut req: Req, log: &mut Log) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("loop { let __rl_attempt"), "{out}");
    assert!(!out.contains("clone"), "{out}");
    assert!(!out.contains("& mut * log"), "{out}");
    // The single attempt takes the argument itself, `mut` and all.
    assert!(out.contains("async fn f (mut req : Req"), "{out}");
}

#[test]
fn mut_moves_onto_the_per_attempt_binding() {
    let func = expand_fn(
        quote!(model = "m"),
        quote!(
            async fn f(mut text: String, mut n: &mut u32, mut s: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        signature(&func),
        "async fn f (text : String , n : & mut u32 , s : & str) -> Result < () , E >"
    );
    let out = func.to_token_stream().to_string();
    assert!(out.contains("let mut text = __rl_in0 ;"), "{out}");
    assert!(out.contains("let mut n = __rl_in1 ;"), "{out}");
    assert!(out.contains("let mut s = __rl_in2 ;"), "{out}");
}

#[test]
fn patterns_are_bound_to_hygienic_names() {
    let func = expand_fn(
        quote!(model = "m"),
        quote!(
            async fn f((a, b): (A, B), _: C) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        signature(&func),
        "async fn f (__rl_arg0 : (A , B) , __rl_arg1 : C) -> Result < () , E >"
    );
    let out = func.to_token_stream().to_string();
    assert!(out.contains("let (a , b) = __rl_in0 ;"), "{out}");
    // Both are estimated, the ignored one included.
    assert!(out.contains("Arg (& __rl_arg0)"), "{out}");
    assert!(out.contains("Arg (& __rl_arg1)"), "{out}");
    // `_` is not bound per attempt, so it needs no clone.
    assert!(!out.contains("require_clone (& __rl_arg1)"), "{out}");
}

#[test]
fn self_is_renamed_when_it_is_rebound() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote! {
            async fn f(mut self) -> Result<(), E> {
                self.touch();
                let _ = self::helper();
                println!("{}", self.name);
                struct Inner;
                impl Inner { fn get(self) -> Self { self } }
                Ok(())
            }
        },
    );
    assert!(out.contains("async fn f (self)"), "{out}");
    assert!(out.contains("require_clone (& self)"), "{out}");
    assert!(
        out.contains("let mut __rl_self = :: core :: clone :: Clone :: clone (& self) ;"),
        "{out}"
    );
    assert!(out.contains("__rl_self . touch ()"), "{out}");
    assert!(out.contains("self :: helper ()"), "{out}");
    assert!(
        out.contains("println ! (\"{}\" , __rl_self . name)"),
        "{out}"
    );
    assert!(out.contains("fn get (self) -> Self { self }"), "{out}");
}

#[test]
fn mut_self_is_reborrowed_and_shared_self_is_left_alone() {
    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f(&mut self) -> Result<(), E> {
                self.n += 1;
                Ok(())
            }
        ),
    );
    assert!(out.contains("let __rl_self = & mut * self ;"), "{out}");
    assert!(out.contains("__rl_self . n += 1"), "{out}");

    let out = expand_to_string(
        quote!(model = "m"),
        quote!(
            async fn f(&self) -> Result<(), E> {
                self.get()
            }
        ),
    );
    assert!(!out.contains("__rl_self"), "{out}");

    let out = expand_to_string(
        quote!(model = "m", retries = 0),
        quote!(
            async fn f(mut self) -> Result<(), E> {
                self.n += 1;
                Ok(())
            }
        ),
    );
    assert!(!out.contains("__rl_self"), "{out}");
    assert!(out.contains("async fn f (mut self)"), "{out}");
}

#[test]
fn a_pattern_whose_names_a_key_uses_is_bound_for_the_keys_first() {
    let out = expand_to_string(
        quote!(model = "m", max_tokens = max_tokens),
        quote!(
            async fn f(
                Request {
                    prompt,
                    mut max_tokens,
                    ..
                }: Request,
            ) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    // By value: every name by `ref`, nothing moved; before the call is opened.
    let keys = out
        .find("let Request { ref prompt , ref max_tokens , .. } = __rl_arg0 ;")
        .unwrap_or_else(|| panic!("{out}"));
    let open = out.find("Call :: new").unwrap();
    assert!(keys < open, "{out}");
    // The body still binds the user's pattern per attempt.
    assert!(
        out.contains("let Request { prompt , mut max_tokens , .. } = __rl_in0 ;"),
        "{out}"
    );
}

#[test]
fn a_borrowed_pattern_is_bound_as_the_body_binds_it() {
    let out = expand_to_string(
        quote!(model = model, n = *n),
        quote!(
            async fn f(
                Request { model, .. }: &Request,
                &mut Choice { n }: &mut Choice,
            ) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains("let Request { model , .. } = __rl_arg0 ;"),
        "{out}"
    );
    // `&mut`: shared references to the place, since the estimate reads the argument too.
    assert!(
        out.contains("let Choice { ref n } = * __rl_arg1 ;"),
        "{out}"
    );
}

#[test]
fn a_pattern_no_key_names_is_bound_only_per_attempt() {
    let out = expand_to_string(
        quote!(model = "m", max_tokens = request_limit),
        quote!(
            async fn f(Request { prompt, .. }: Request, request_limit: u32) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(!out.contains("ref prompt"), "{out}");
    assert_eq!(
        out.matches("let Request { prompt , .. }").count(),
        1,
        "{out}"
    );
}
